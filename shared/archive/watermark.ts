/**
 * Has the archive passed a moment? For a warm-up or a rebuild: every record appended to the
 * stream before `moment` must be in the archive before the replay that follows counts as
 * complete. A record appended after the projection's queue was subscribed is published after
 * it too, so it reaches the queue's buffer: the replay need not wait for it.
 */
import { kinesisClient } from "../aws/clients.ts";
import { isAwsError } from "../aws/errors.ts";
import { listShards } from "../aws/shards.ts";
import { readManifests } from "./reader.ts";

/**
 * For every shard of the stream: is each record that arrived before `moment` archived? True
 * when the first record after the shard's archive watermark arrived at or after `moment` (or
 * there is none).
 */
export async function archivePassed(options: {
  readonly bucket: string;
  readonly bus: string;
  readonly streamName: string;
  readonly moment: Date;
}): Promise<{ passed: boolean; waitingOn: string[] }> {
  const watermarks = new Map(
    (await readManifests(options.bucket, options.bus)).map((m) => [m.shardId, m.lastSequenceNumber]),
  );
  const waitingOn: string[] = [];
  for (const shard of await listShards(options.streamName)) {
    const shardId = shard.ShardId ?? "";
    const watermark = watermarks.get(shardId);
    const next = await firstRecordAfter(options.streamName, shardId, watermark);
    if (next?.ApproximateArrivalTimestamp !== undefined && next.ApproximateArrivalTimestamp < options.moment) {
      waitingOn.push(shardId);
    }
  }
  return { passed: waitingOn.length === 0, waitingOn };
}

/**
 * The shard's first record after the watermark. A watermark the stream no longer has (trimmed
 * past retention; a local stream that lost records in a crash) is refused by AFTER_SEQUENCE_NUMBER:
 * then the shard is read from its start, past every record at or below the watermark.
 */
async function firstRecordAfter(streamName: string, shardId: string, watermark: string | undefined) {
  // Loaded on first use: a projection's replayer asks only in a warm-up job.
  const { GetRecordsCommand, GetShardIteratorCommand } = await import("@aws-sdk/client-kinesis");
  const from = (type: "AFTER_SEQUENCE_NUMBER" | "TRIM_HORIZON") =>
    kinesisClient().send(
      new GetShardIteratorCommand({
        StreamName: streamName,
        ShardId: shardId,
        ShardIteratorType: type,
        ...(type === "AFTER_SEQUENCE_NUMBER" ? { StartingSequenceNumber: watermark } : {}),
      }),
    );
  if (watermark === undefined) return firstRecord((await from("TRIM_HORIZON")).ShardIterator);
  try {
    return await firstRecord((await from("AFTER_SEQUENCE_NUMBER")).ShardIterator);
  } catch (error) {
    if (!isAwsError(error, "InvalidArgumentException")) throw error;
  }
  let iterator = (await from("TRIM_HORIZON")).ShardIterator;
  for (let page = 0; iterator !== undefined && page < 1_000; page++) {
    const result = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1_000 }));
    const after = result.Records?.find((r) => BigInt(r.SequenceNumber ?? "0") > BigInt(watermark));
    if (after !== undefined) return after;
    if ((result.Records ?? []).length === 0 && result.MillisBehindLatest === 0) return undefined;
    iterator = result.NextShardIterator;
  }
  return undefined;
}

/** The first record from an iterator: Kinesis may answer empty pages before it, while behind the tip. */
async function firstRecord(iterator: string | undefined) {
  const { GetRecordsCommand } = await import("@aws-sdk/client-kinesis");
  let current = iterator;
  for (let page = 0; current !== undefined && page < 100; page++) {
    const result = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: current, Limit: 1 }));
    const record = result.Records?.[0];
    if (record !== undefined || result.MillisBehindLatest === 0) return record;
    current = result.NextShardIterator;
  }
  return undefined;
}
