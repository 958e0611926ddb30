/**
 * Has the archive passed a moment? For a warm-up or a rebuild: every record appended to the
 * stream before `moment` must be in the archive before the replay that follows counts as
 * complete. A record appended after the projection's queue was subscribed is published after
 * it too, so it reaches the queue's buffer: the replay need not wait for it.
 */
import { GetRecordsCommand, GetShardIteratorCommand } from "@aws-sdk/client-kinesis";
import { kinesisClient } from "../aws/clients.ts";
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
    const { ShardIterator } = await kinesisClient().send(
      new GetShardIteratorCommand(
        watermark
          ? {
              StreamName: options.streamName,
              ShardId: shardId,
              ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
              StartingSequenceNumber: watermark,
            }
          : { StreamName: options.streamName, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" },
      ),
    );
    const next = await firstRecord(ShardIterator);
    if (next?.ApproximateArrivalTimestamp !== undefined && next.ApproximateArrivalTimestamp < options.moment) {
      waitingOn.push(shardId);
    }
  }
  return { passed: waitingOn.length === 0, waitingOn };
}

/** The first record from an iterator: Kinesis may answer empty pages before it, while behind the tip. */
async function firstRecord(iterator: string | undefined) {
  let current = iterator;
  for (let page = 0; current !== undefined && page < 100; page++) {
    const result = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: current, Limit: 1 }));
    const record = result.Records?.[0];
    if (record !== undefined || result.MillisBehindLatest === 0) return record;
    current = result.NextShardIterator;
  }
  return undefined;
}
