/**
 * The archiver: the bus stream → S3, the permanent log (law J). Each batch (one shard, in
 * order) becomes one gzip JSON-lines object keyed by its sequence range, then the shard's
 * manifest moves its watermark. Every record is kept: commits that lost arbitration, rejections,
 * and malformed records with their reason. A retry rewrites the same object and leaves the
 * manifest as it was, so a crash anywhere loses nothing and doubles nothing.
 */
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import type { KinesisStreamHandler, KinesisStreamRecord } from "aws-lambda";
import {
  type ArchivedRecord,
  compareSequence,
  lineageKey,
  manifestKey,
  objectKey,
  type ShardLineage,
  type ShardManifest,
} from "../archive/layout.ts";
import { readJson } from "../archive/reader.ts";
import { s3Client } from "../aws/clients.ts";
import { listShards } from "../aws/shards.ts";
import { requireEnv } from "../env.ts";
import { isCanonError } from "../errors.ts";
import { readCommit } from "../events/envelope.ts";
import { functionLogger } from "../log.ts";
import { envNames } from "../plan.ts";

const logger = /* @__PURE__ */ functionLogger("archiver");
const gzipAsync = promisify(gzip);
const knownShards = new Set<string>();

interface Config {
  readonly bus: string;
  readonly bucket: string;
  readonly streamName: string;
}

/** The archiver's Lambda handler (Kinesis event source; a batch never spans shards). */
export const archiverHandler: KinesisStreamHandler = async (event) => {
  const config: Config = {
    bus: requireEnv(envNames.bus),
    bucket: requireEnv(envNames.archiveBucket),
    streamName: requireEnv(envNames.streamName),
  };
  const byShard = new Map<string, KinesisStreamRecord[]>();
  for (const record of event.Records) {
    const shardId = record.eventID.split(":")[0] ?? "unknown";
    byShard.set(shardId, [...(byShard.get(shardId) ?? []), record]);
  }
  for (const [shardId, records] of byShard) {
    if (!knownShards.has(shardId)) await recordLineage(config);
    knownShards.add(shardId);
    await archiveBatch(config, shardId, records);
  }
};

/** Writes one batch of one shard, then advances that shard's manifest. */
export async function archiveBatch(
  config: Config,
  shardId: string,
  records: readonly KinesisStreamRecord[],
): Promise<void> {
  const first = records[0];
  const last = records.at(-1);
  if (first === undefined || last === undefined) return;
  const lines = await Promise.all(records.map((record) => toArchived(config.bus, shardId, record)));
  const body = await gzipAsync(Buffer.from(`${lines.map((l) => JSON.stringify(l)).join("\n")}\n`));
  const arrivedAt = new Date(first.kinesis.approximateArrivalTimestamp * 1000);
  const key = objectKey(config.bus, shardId, arrivedAt, first.kinesis.sequenceNumber, last.kinesis.sequenceNumber);
  await s3Client().send(
    new PutObjectCommand({
      Bucket: config.bucket,
      Key: key,
      Body: body,
      ContentType: "application/x-ndjson",
      ContentEncoding: "gzip",
    }),
  );
  const manifest = await readJson<ShardManifest>(config.bucket, manifestKey(config.bus, shardId));
  if (manifest !== undefined && compareSequence(manifest.lastSequenceNumber, last.kinesis.sequenceNumber) >= 0) {
    return; // a retry of a batch already counted
  }
  const next: ShardManifest = {
    bus: config.bus,
    shardId,
    lastSequenceNumber: last.kinesis.sequenceNumber,
    objects: (manifest?.objects ?? 0) + 1,
    // A batch retried with other boundaries (a crash after a prefix, a bisected retry) overlaps what
    // the manifest already counts; the reader reads such records once, so they are counted once.
    records:
      (manifest?.records ?? 0) +
      records.filter(
        (r) => manifest === undefined || compareSequence(r.kinesis.sequenceNumber, manifest.lastSequenceNumber) > 0,
      ).length,
    updatedAt: new Date().toISOString(),
  };
  await putJson(config.bucket, manifestKey(config.bus, shardId), next);
}

/** A record as archived: claim checks resolved, so the archive stands alone. */
async function toArchived(bus: string, shardId: string, record: KinesisStreamRecord): Promise<ArchivedRecord> {
  const base = {
    bus,
    shardId,
    sequenceNumber: record.kinesis.sequenceNumber,
    partitionKey: record.kinesis.partitionKey,
    arrivedAt: new Date(record.kinesis.approximateArrivalTimestamp * 1000).toISOString(),
  };
  try {
    return { ...base, commit: await readCommit(Buffer.from(record.kinesis.data, "base64")) };
  } catch (error) {
    if (isCanonError(error, "claim_check")) throw error; // S3 trouble: retry, never drop
    const reason = error instanceof Error ? error.message : String(error);
    logger.warn("archiving a malformed record", { reason, sequenceNumber: record.kinesis.sequenceNumber });
    return { ...base, malformed: { reason, data: record.kinesis.data } };
  }
}

/** Keeps the stream's shard parents in the archive, so readers put parents before children for ever. */
async function recordLineage(config: Config): Promise<void> {
  const known = (await readJson<ShardLineage[]>(config.bucket, lineageKey(config.bus))) ?? [];
  const merged = new Map(known.map((s) => [s.shardId, s]));
  for (const shard of await listShards(config.streamName)) {
    if (!shard.ShardId) continue;
    merged.set(shard.ShardId, {
      shardId: shard.ShardId,
      parentShardId: shard.ParentShardId,
      adjacentParentShardId: shard.AdjacentParentShardId,
    });
  }
  await putJson(config.bucket, lineageKey(config.bus), [...merged.values()]);
}

async function putJson(bucket: string, key: string, value: unknown): Promise<void> {
  await s3Client().send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(value), ContentType: "application/json" }),
  );
}
