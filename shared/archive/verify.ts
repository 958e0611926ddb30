/**
 * `canon archive verify`: proves the archive complete (invariant 4). Per shard, the archived
 * records reconcile with the manifest's count and watermark; every record still in the stream
 * up to the watermark is in the archive; per aggregate, the accepted versions run from 1 with
 * no gap. Any problem is named.
 */
import { GetRecordsCommand, GetShardIteratorCommand } from "@aws-sdk/client-kinesis";
import { kinesisClient } from "../aws/clients.ts";
import { listShards } from "../aws/shards.ts";
import { aggregateKey, arbiter } from "../events/arbitrate.ts";
import { compareSequence } from "./layout.ts";
import { readArchivedRecords, readManifests } from "./reader.ts";

export interface VerifyReport {
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly stats: {
    readonly shards: number;
    readonly records: number;
    readonly commits: number;
    readonly acceptedCommits: number;
    readonly aggregates: number;
    readonly streamRecordsChecked: number;
    /** Records in the stream past the archive's watermark (archiving lag, not a fault). */
    readonly notYetArchived: number;
  };
}

export async function verifyArchive(options: {
  readonly bucket: string;
  readonly bus: string;
  /** The bus stream, to check that what it still holds is archived; omit when it is gone. */
  readonly streamName?: string;
}): Promise<VerifyReport> {
  const problems: string[] = [];
  const perShard = new Map<string, { count: number; last: string }>();
  const archived = new Set<string>();
  const run = arbiter();
  let records = 0;
  let commits = 0;
  let acceptedCommits = 0;
  /** Pipelined commits that stood before their predecessor: fine once the predecessor comes after. */
  const awaitingPredecessor = new Map<string, string[]>();

  for await (const record of readArchivedRecords(options.bucket, options.bus)) {
    records += 1;
    archived.add(`${record.shardId}/${record.sequenceNumber}`);
    const shard = perShard.get(record.shardId) ?? { count: 0, last: "0" };
    perShard.set(record.shardId, { count: shard.count + 1, last: record.sequenceNumber });
    const commit = record.commit;
    if (commit === undefined) continue;
    commits += 1;
    const key = aggregateKey(commit);
    awaitingPredecessor.delete(commit.commitId);
    const verdict = run.judge(commit);
    if (verdict.verdict === "accepted") {
      acceptedCommits += 1;
    } else if (verdict.verdict === "conflict" && commit.expectedVersion > verdict.currentVersion) {
      // Commits are decided against versions already on the stream: one from "the future" means the archive lost some.
      const problem = `${key}: commit ${commit.commitId} (shard ${record.shardId}, sequence ${record.sequenceNumber}) follows version ${commit.expectedVersion}, but the archive has versions only up to ${verdict.currentVersion}`;
      if (commit.previousCommitId === undefined) problems.push(problem);
      // A pipelined commit may stand once before its predecessor (Kinesis refused or lost the
      // predecessor's entry and the handler sent both again): only if the predecessor never comes is one lost.
      else
        awaitingPredecessor.set(commit.previousCommitId, [
          ...(awaitingPredecessor.get(commit.previousCommitId) ?? []),
          problem,
        ]);
    }
  }
  for (const waiting of awaitingPredecessor.values()) problems.push(...waiting);

  const manifests = await readManifests(options.bucket, options.bus);
  for (const manifest of manifests) {
    const seen = perShard.get(manifest.shardId) ?? { count: 0, last: "0" };
    if (seen.count !== manifest.records) {
      problems.push(
        `shard ${manifest.shardId}: the manifest counts ${manifest.records} records, the archive holds ${seen.count}`,
      );
    }
    if (seen.count > 0 && compareSequence(seen.last, manifest.lastSequenceNumber) !== 0) {
      problems.push(
        `shard ${manifest.shardId}: the last archived record is ${seen.last}, the manifest's watermark ${manifest.lastSequenceNumber}`,
      );
    }
  }
  for (const shardId of perShard.keys()) {
    if (!manifests.some((m) => m.shardId === shardId))
      problems.push(`shard ${shardId}: archived records but no manifest`);
  }

  let streamRecordsChecked = 0;
  let notYetArchived = 0;
  if (options.streamName !== undefined) {
    const watermarks = new Map(manifests.map((m) => [m.shardId, m.lastSequenceNumber]));
    for await (const { shardId, sequenceNumber } of streamRecords(options.streamName)) {
      const watermark = watermarks.get(shardId);
      if (watermark === undefined || compareSequence(sequenceNumber, watermark) > 0) {
        notYetArchived += 1;
        continue;
      }
      streamRecordsChecked += 1;
      if (!archived.has(`${shardId}/${sequenceNumber}`)) {
        problems.push(
          `shard ${shardId}: record ${sequenceNumber} is in the stream, below the watermark, but not in the archive`,
        );
      }
    }
  }

  return {
    ok: problems.length === 0,
    problems,
    stats: {
      shards: perShard.size,
      records,
      commits,
      acceptedCommits,
      aggregates: run.heads.size,
      streamRecordsChecked,
      notYetArchived,
    },
  };
}

/** Every record the stream still holds (shard id and sequence number), oldest first per shard. */
async function* streamRecords(streamName: string): AsyncGenerator<{ shardId: string; sequenceNumber: string }> {
  for (const shard of await listShards(streamName)) {
    const shardId = shard.ShardId ?? "";
    let iterator = (
      await kinesisClient().send(
        new GetShardIteratorCommand({ StreamName: streamName, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }),
      )
    ).ShardIterator;
    while (iterator) {
      const page = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      for (const record of page.Records ?? []) yield { shardId, sequenceNumber: record.SequenceNumber ?? "" };
      if ((page.Records ?? []).length === 0 || page.MillisBehindLatest === 0) break;
      iterator = page.NextShardIterator;
    }
  }
}
