/**
 * The archive's layout in S3 (law J): one gzip JSON-lines object per archived batch per shard,
 * under Hive-style partitions so Athena (partition projection) and DuckDB read it directly:
 *
 *   archive/bus=<bus>/dt=<yyyy-mm-dd>/shard=<shardId>/<firstSeq>-<lastSeq>.jsonl.gz
 *   manifests/bus=<bus>/shard=<shardId>.json      how far the shard is archived (the watermark)
 *   lineage/bus=<bus>.json                        parent shards, so readers keep parents first
 *
 * A retry of a batch writes the same key again: objects are idempotent.
 */
import type { Commit } from "../events/envelope.ts";

/** One line of an archive object: a Kinesis record, with its commit (or why it is not one). */
export interface ArchivedRecord {
  readonly bus: string;
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly partitionKey: string;
  readonly arrivedAt: string;
  /** The commit the record holds, claim checks resolved. */
  readonly commit?: Commit;
  /** A record that is not a valid commit is archived too, with the reason (store everything). */
  readonly malformed?: { readonly reason: string; readonly data: string };
}

/** Per shard: everything up to `lastSequenceNumber` is archived, in `objects` objects of `records` records. */
export interface ShardManifest {
  readonly bus: string;
  readonly shardId: string;
  readonly lastSequenceNumber: string;
  readonly objects: number;
  readonly records: number;
  readonly updatedAt: string;
}

export interface ShardLineage {
  readonly shardId: string;
  readonly parentShardId?: string;
  readonly adjacentParentShardId?: string;
}

export const archivePrefix = (bus: string) => `archive/bus=${bus}/`;
export const manifestKey = (bus: string, shardId: string) => `manifests/bus=${bus}/shard=${shardId}.json`;
export const manifestPrefix = (bus: string) => `manifests/bus=${bus}/`;
export const lineageKey = (bus: string) => `lineage/bus=${bus}.json`;

/** The object key of a batch: partitioned by bus, date (of its first record), shard; named by its sequence range. */
export function objectKey(bus: string, shardId: string, arrivedAt: Date, first: string, last: string): string {
  const date = arrivedAt.toISOString().slice(0, 10);
  return `${archivePrefix(bus)}dt=${date}/shard=${shardId}/${first}-${last}.jsonl.gz`;
}

/** Reads the shard and sequence range back from an object key (undefined: not an archive object). */
export function parseObjectKey(key: string): { shardId: string; first: string; last: string } | undefined {
  const match = /shard=([^/]+)\/(\d+)-(\d+)\.jsonl\.gz$/.exec(key);
  if (!match) return undefined;
  return { shardId: match[1] as string, first: match[2] as string, last: match[3] as string };
}

/** Kinesis sequence numbers are decimal strings beyond 2^53: compare them as big integers. */
export function compareSequence(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
