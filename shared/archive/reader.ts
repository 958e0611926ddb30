/**
 * Reads the archive back in the order every reader must use: per shard by sequence number,
 * parent shards before their children (after resharding), so each aggregate's commits come in
 * stream order.
 */
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { s3Client } from "../aws/clients.ts";
import { isAwsError } from "../aws/errors.ts";
import {
  type ArchivedRecord,
  archivePrefix,
  compareSequence,
  lineageKey,
  manifestPrefix,
  parseObjectKey,
  type ShardLineage,
  type ShardManifest,
} from "./layout.ts";

const gunzipAsync = promisify(gunzip);

/**
 * The S3 client's commands, loaded when the archive is first read, not when this module is: a
 * projection's Lambda carries its replayer, which reads the archive only in a warm-up job.
 */
const s3 = () => import("@aws-sdk/client-s3");

/** An S3 object's JSON (undefined when there is no such object). */
export async function readJson<T>(bucket: string, key: string): Promise<T | undefined> {
  const { GetObjectCommand } = await s3();
  try {
    const object = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse((await object.Body?.transformToString()) ?? "null") as T;
  } catch (error) {
    if (isAwsError(error, "NoSuchKey") || isAwsError(error, "NotFound")) return undefined;
    throw error;
  }
}

export interface ArchiveObject {
  readonly key: string;
  readonly shardId: string;
  readonly first: string;
  readonly last: string;
  readonly size: number;
}

/** Every archive object of a bus, grouped by shard in reading order, each shard's objects by sequence. */
export async function listArchive(bucket: string, bus: string): Promise<{ shard: string; objects: ArchiveObject[] }[]> {
  const { ListObjectsV2Command } = await s3();
  const objects: ArchiveObject[] = [];
  let token: string | undefined;
  do {
    const page = await s3Client().send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: archivePrefix(bus), ContinuationToken: token }),
    );
    for (const item of page.Contents ?? []) {
      const parsed = item.Key ? parseObjectKey(item.Key) : undefined;
      if (parsed && item.Key) objects.push({ key: item.Key, ...parsed, size: item.Size ?? 0 });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const byShard = new Map<string, ArchiveObject[]>();
  for (const object of objects) byShard.set(object.shardId, [...(byShard.get(object.shardId) ?? []), object]);
  for (const list of byShard.values()) list.sort((a, b) => compareSequence(a.first, b.first));
  const lineage = (await readJson<ShardLineage[]>(bucket, lineageKey(bus))) ?? [];
  return shardOrder([...byShard.keys()], lineage).map((shard) => ({ shard, objects: byShard.get(shard) ?? [] }));
}

/** Shards ordered so that every parent comes before its children; otherwise by shard id. */
export function shardOrder(shards: readonly string[], lineage: readonly ShardLineage[]): string[] {
  const parents = new Map(
    lineage.map((l) => [l.shardId, [l.parentShardId, l.adjacentParentShardId].filter(Boolean) as string[]]),
  );
  const ordered: string[] = [];
  const placed = new Set<string>();
  const visit = (shard: string, path: Set<string>) => {
    if (placed.has(shard) || path.has(shard)) return;
    path.add(shard);
    for (const parent of parents.get(shard) ?? []) if (shards.includes(parent)) visit(parent, path);
    placed.add(shard);
    ordered.push(shard);
  };
  for (const shard of [...shards].sort()) visit(shard, new Set());
  return ordered;
}

/** The records of one archive object, in sequence order. */
export async function readObject(bucket: string, key: string): Promise<ArchivedRecord[]> {
  const { GetObjectCommand } = await s3();
  const object = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = Buffer.from((await object.Body?.transformToByteArray()) ?? new Uint8Array());
  const text = (await gunzipAsync(bytes)).toString("utf8");
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as ArchivedRecord);
}

/**
 * Every archived record of a bus, once, in reading order (shard lineage, then sequence). A
 * batch retried with other boundaries can archive a record twice; it is read once.
 */
export async function* readArchivedRecords(bucket: string, bus: string): AsyncGenerator<ArchivedRecord> {
  for (const { objects } of await listArchive(bucket, bus)) {
    let last: string | undefined;
    for (const object of objects) {
      for (const record of await readObject(bucket, object.key)) {
        if (last !== undefined && compareSequence(record.sequenceNumber, last) <= 0) continue;
        last = record.sequenceNumber;
        yield record;
      }
    }
  }
}

/** The shards' manifests (watermarks and counts). */
export async function readManifests(bucket: string, bus: string): Promise<ShardManifest[]> {
  const { ListObjectsV2Command } = await s3();
  const manifests: ShardManifest[] = [];
  let token: string | undefined;
  do {
    const page = await s3Client().send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: manifestPrefix(bus), ContinuationToken: token }),
    );
    for (const item of page.Contents ?? []) {
      const manifest = item.Key ? await readJson<ShardManifest>(bucket, item.Key) : undefined;
      if (manifest) manifests.push(manifest);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return manifests;
}
