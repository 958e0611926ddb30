/**
 * Plays a Kinesis event source mapping locally: one poller per shard, in order; parents are
 * read to their end before their children (resharding); batches go to the handler as a real
 * `KinesisStreamEvent`. Partial failures restart from the first failed record; an error
 * bisects the batch; after `maxRetryAttempts` (-1: never) the batch's description goes to the
 * on-failure queue and the shard moves on. Checkpoints live in a local table, so a restart
 * resumes where it stopped, as the AWS mapping does. A checkpoint that names a record the stream
 * no longer has (lost in a crash, trimmed, or a stream made anew) resumes at the next record that
 * exists, and says so once (resume below). With fault injection on (faults.ts), an
 * invocation may crash after partial work: its result is lost and the batch is delivered again.
 */

import { setTimeout as wait } from "node:timers/promises";
import {
  type _Record,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type Shard,
} from "@aws-sdk/client-kinesis";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from "aws-lambda";
import { dynamoClient, kinesisClient, sqsClient } from "../aws/clients.ts";
import { isAwsError } from "../aws/errors.ts";
import { listShards } from "../aws/shards.ts";
import { type FaultKind, type FaultSpec, functionRandom, planKinesisFaults, type Random } from "./faults.ts";
import { localContext } from "./lambda-context.ts";
import { streamSignalsOn, streamWriteMark, untilStreamWritten } from "./stream-signal.ts";

export interface KinesisSourceOptions {
  readonly functionName: string;
  readonly streamName: string;
  readonly streamArn: string;
  readonly batchSize: number;
  /** Like ParallelizationFactor: a batch is split by partition key into this many lanes handled at once. @default 1 */
  readonly parallelizationFactor?: number;
  /** Like MaximumBatchingWindowInSeconds: a batch short of `batchSize` waits this long for more. @default 0 */
  readonly batchWindowSeconds?: number;
  readonly bisectBatchOnError: boolean;
  readonly maxRetryAttempts: number;
  readonly onFailureQueueUrl: string;
  readonly checkpointTable: string;
  /** Idle poll interval per shard (AWS polls about once a second). */
  readonly pollIntervalMs: number;
  /**
   * A shard's checkpoint is written at most this often (and when it stops or ends): on AWS the
   * mapping keeps it at no cost, here each write is a DynamoDB call. A hard kill delivers the
   * records since the last write again, which at-least-once delivery allows. @default 0 (every batch)
   */
  readonly checkpointEveryMs?: number;
  readonly isStopping: () => boolean;
  /** Faults to inject (none when undefined). */
  readonly faults?: FaultSpec;
  /** Told of every injected fault. */
  readonly onFault?: (kind: FaultKind) => void;
}

export type KinesisLambda = (
  event: KinesisStreamEvent,
  context: ReturnType<typeof localContext>,
) => Promise<KinesisStreamBatchResponse | undefined>;

const shardEnd = "SHARD_END";

/** Runs until `isStopping()`: discovers shards, starts each when its parents are done. */
export async function runKinesisSource(options: KinesisSourceOptions, handler: KinesisLambda): Promise<void> {
  const faults = options.faults && {
    spec: options.faults,
    random: functionRandom(options.faults.seed, options.functionName),
  };
  const running = new Map<string, Promise<void>>();
  const finished = new Set<string>();
  while (!options.isStopping()) {
    let shards: Shard[] = [];
    try {
      shards = await listShards(options.streamName);
    } catch (error) {
      console.error(`[${options.functionName}] list shards failed:`, (error as Error).message);
    }
    for (const shard of shards) {
      const id = shard.ShardId ?? "";
      if (running.has(id) || finished.has(id)) continue;
      const parents = [shard.ParentShardId, shard.AdjacentParentShardId].filter((p): p is string => Boolean(p));
      const known = new Set(shards.map((s) => s.ShardId));
      // A parent that aged out of the stream no longer gates its children.
      if (!parents.every((p) => finished.has(p) || !known.has(p))) continue;
      running.set(
        id,
        runShard(options, id, handler, faults).then(
          (ended) => {
            running.delete(id);
            if (ended) finished.add(id);
          },
          (error: unknown) => {
            // Kinesis or the checkpoint table unreachable (an emulator restarting, a throttle): the
            // next listing starts this shard again from its checkpoint, as the event source mapping
            // would. Left unhandled, the rejection would kill the worker and stop the consumer for good.
            console.error(`[${options.functionName}] ${id} stopped; resumed from its checkpoint:`, describe(error));
            running.delete(id);
          },
        ),
      );
    }
    await sleep(2_000, options.isStopping);
  }
  await Promise.all(running.values());
}

/** Reads one shard to its end (true) or until stopping (false). */
interface Faults {
  readonly spec: FaultSpec;
  readonly random: Random;
}

async function runShard(
  options: KinesisSourceOptions,
  shardId: string,
  handler: KinesisLambda,
  faults: Faults | undefined,
): Promise<boolean> {
  const checkpointKey = `${options.functionName}#${shardId}`;
  const checkpoint = await readCheckpoint(options.checkpointTable, checkpointKey);
  if (checkpoint === shardEnd) return true;
  let { iterator, skipThrough } = await resume(options, shardId, checkpoint);
  let idleMs = options.pollIntervalMs;
  const saved = lazyCheckpoint(options, checkpointKey);
  try {
    return await readShard();
  } finally {
    await saved.flush();
  }

  async function readShard(): Promise<boolean> {
    while (!options.isStopping()) {
      if (iterator === undefined) {
        await saved.write(shardEnd);
        return true;
      }
      let records: _Record[];
      let next: string | undefined;
      let atTip: boolean;
      const mark = streamWriteMark(options.streamName, shardId);
      try {
        const page = await kinesisClient().send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: options.batchSize }),
        );
        records = page.Records ?? [];
        next = page.NextShardIterator;
        atTip = (page.MillisBehindLatest ?? 0) === 0;
      } catch (error) {
        console.error(`[${options.functionName}] ${shardId} read failed:`, (error as Error).message);
        await sleep(options.pollIntervalMs, options.isStopping);
        // The iterator may have expired: take a new one from the checkpoint (what was delivered, saved first).
        await saved.flush();
        ({ iterator, skipThrough } = await resume(
          options,
          shardId,
          await readCheckpoint(options.checkpointTable, checkpointKey),
        ));
        continue;
      }
      if (skipThrough !== undefined) {
        // Resuming past a checkpoint the stream no longer has: what is not after it was delivered before.
        const through = skipThrough;
        const skipped = records.filter((r) => sequenceValue(r.SequenceNumber) <= through);
        records = records.slice(skipped.length);
        if (records.length > 0 || atTip || next === undefined) {
          skipThrough = undefined;
          const at = records[0]?.SequenceNumber;
          console.error(
            `[${options.functionName}] ${shardId} resumed ${at ? `at ${at}, the first record after the checkpoint` : "at the tip: the shard holds no record after the checkpoint"}`,
          );
        }
        if (records.length === 0 && (skipped.length > 0 || skipThrough === undefined)) {
          // From now on the checkpoint names a record the stream has (or none: the shard is empty).
          await saved.write(skipped.at(-1)?.SequenceNumber ?? "");
        }
      }
      if (records.length > 0 && next !== undefined && (options.batchWindowSeconds ?? 0) > 0) {
        ({ records, next } = await fillBatchWindow(options, records, next));
      }
      if (records.length > 0) {
        const events = records.map((r) => toRecord(r, shardId, options.streamArn));
        const completed = await deliverInLanes(options, shardId, events, handler, faults);
        if (!completed) return false;
        await saved.moveTo(events.at(-1)?.kinesis.sequenceNumber ?? "");
        if (!streamSignalsOn()) {
          idleMs = options.pollIntervalMs;
        } else if (atTip && records.length < options.batchSize && (options.batchWindowSeconds ?? 0) === 0) {
          // Read to the tip, and this process's appends wake the reader: the next read waits for
          // one (since the mark taken before this read, so none is missed) instead of finding the
          // shard empty and backing off from the start. Only a writer from another process waits
          // for the idle poll, as it would on an idle shard.
          await untilStreamWritten(options.streamName, mark, idleMs, options.isStopping, shardId);
        }
      } else {
        await saved.moveTo(undefined);
        // Idle: poll again after the interval, or at once when a function of this process appends.
        // An idle shard is polled less and less often (to a second): the signal still wakes it at
        // once, and a writer from another process is seen within the second.
        await untilStreamWritten(options.streamName, mark, idleMs, options.isStopping, shardId);
        idleMs = Math.min(idleMs * 2, Math.max(options.pollIntervalMs, maxIdlePollMs));
      }
      iterator = next;
    }
    return false;
  }
}

/**
 * A shard's checkpoint, written at once (`write`) or at most every `checkpointEveryMs` (`moveTo`;
 * `moveTo(undefined)` writes one that is due), and what is unwritten on `flush`.
 */
function lazyCheckpoint(options: KinesisSourceOptions, key: string) {
  const every = options.checkpointEveryMs ?? 0;
  let unwritten: string | undefined;
  let writtenAt = 0;
  const write = async (sequenceNumber: string) => {
    unwritten = undefined;
    writtenAt = Date.now();
    await writeCheckpoint(options.checkpointTable, key, sequenceNumber);
  };
  return {
    write,
    async moveTo(sequenceNumber: string | undefined) {
      if (sequenceNumber !== undefined) unwritten = sequenceNumber;
      if (unwritten !== undefined && Date.now() - writtenAt >= every) await write(unwritten);
    },
    async flush() {
      if (unwritten !== undefined) await write(unwritten).catch(() => undefined);
    },
  };
}

/**
 * Where to read a shard from its checkpoint: after the checkpointed record when the stream still
 * has it. When it does not (AFTER_SEQUENCE_NUMBER refused, a crash lost records the checkpoint
 * names, the stream was trimmed past it, or the stream was made anew), from the shard's oldest
 * record, skipping every record whose sequence number is not after the checkpoint; said once.
 */
async function resume(
  options: KinesisSourceOptions,
  shardId: string,
  checkpoint: string | undefined,
): Promise<{ iterator: string | undefined; skipThrough?: bigint }> {
  const { streamName } = options;
  if (!checkpoint) return { iterator: await trimHorizon(streamName, shardId) };
  let reason: string;
  try {
    const at = await kinesisClient().send(
      new GetShardIteratorCommand({
        StreamName: streamName,
        ShardId: shardId,
        ShardIteratorType: "AT_SEQUENCE_NUMBER",
        StartingSequenceNumber: checkpoint,
      }),
    );
    const first = await firstRecord(at.ShardIterator);
    if (first.record?.SequenceNumber === checkpoint) return { iterator: first.next };
    reason = first.record
      ? `the shard's next record is ${first.record.SequenceNumber}`
      : "the shard holds no record at or after it";
  } catch (error) {
    if (!isAwsError(error, "InvalidArgumentException")) throw error;
    reason = `refused: ${(error as Error).message}`;
  }
  console.error(
    `[${options.functionName}] ${shardId} checkpoint ${checkpoint} names a record the stream no longer has (${reason}); ` +
      "reading on from the next record that exists",
  );
  return { iterator: await trimHorizon(streamName, shardId), skipThrough: sequenceValue(checkpoint) };
}

/** The first record an iterator reads, and the iterator after it (Kinesis may answer empty pages while behind). */
async function firstRecord(iterator: string | undefined): Promise<{ record?: _Record; next?: string }> {
  let current = iterator;
  for (let page = 0; current !== undefined && page < 20; page++) {
    const result = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: current, Limit: 1 }));
    const record = result.Records?.[0];
    if (record !== undefined) return { record, next: result.NextShardIterator };
    if ((result.MillisBehindLatest ?? 0) === 0) return {};
    current = result.NextShardIterator;
  }
  return {};
}

async function trimHorizon(streamName: string, shardId: string): Promise<string | undefined> {
  const result = await kinesisClient().send(
    new GetShardIteratorCommand({ StreamName: streamName, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }),
  );
  return result.ShardIterator;
}

/** A sequence number as a number (they are decimal strings of up to 128 bits); -1 if it is not one. */
function sequenceValue(sequenceNumber: string | undefined): bigint {
  try {
    return /^\d+$/.test(sequenceNumber ?? "") ? BigInt(sequenceNumber as string) : -1n;
  } catch {
    return -1n;
  }
}

/**
 * Delivers a batch in `parallelizationFactor` lanes at once, as Lambda's ParallelizationFactor
 * does: records go to a lane by a hash of their partition key, so one key's records stay in one
 * lane, in order. The checkpoint moves only once every lane is through.
 */
async function deliverInLanes(
  options: KinesisSourceOptions,
  shardId: string,
  batch: readonly KinesisStreamRecord[],
  handler: KinesisLambda,
  faults?: Faults,
): Promise<boolean> {
  const factor = Math.max(1, options.parallelizationFactor ?? 1);
  if (factor === 1) return deliver(options, shardId, batch, handler, faults);
  const lanes = new Map<number, KinesisStreamRecord[]>();
  for (const record of batch) {
    const lane = laneOf(record.kinesis.partitionKey, factor);
    lanes.set(lane, [...(lanes.get(lane) ?? []), record]);
  }
  const done = await Promise.all([...lanes.values()].map((lane) => deliver(options, shardId, lane, handler, faults)));
  return done.every(Boolean);
}

/** A partition key's lane (FNV-1a): the same key, the same lane. */
export function laneOf(partitionKey: string, lanes: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < partitionKey.length; i++) {
    hash ^= partitionKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % lanes;
}

/**
 * Delivers a batch until every record is handled or given up on. Returns false only when
 * stopping interrupted it (the checkpoint then stays before the undelivered records).
 */
async function deliver(
  options: KinesisSourceOptions,
  shardId: string,
  batch: readonly KinesisStreamRecord[],
  handler: KinesisLambda,
  faults?: Faults,
): Promise<boolean> {
  let pending = batch;
  let retries = 0;
  let deliveries = 0;
  while (pending.length > 0) {
    if (options.isStopping()) return false;
    deliveries += 1;
    const fault = faults && planKinesisFaults(faults.spec, faults.random, pending.length, deliveries);
    if (fault?.crashAfter !== undefined) {
      options.onFault?.("crash");
      try {
        await handler({ Records: pending.slice(0, fault.crashAfter) }, localContext(options.functionName, 60_000));
      } catch {
        // The invocation "died" anyway: its result is lost and the batch is delivered again.
      }
      continue;
    }
    let failedAt: number;
    let reason: string;
    try {
      const response = await handler({ Records: [...pending] }, localContext(options.functionName, 60_000));
      const failures = (response?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
      if (failures.length === 0) return true;
      failedAt = Math.min(
        ...failures.map((id) => pending.findIndex((r) => r.kinesis.sequenceNumber === id)).filter((i) => i >= 0),
      );
      if (!Number.isFinite(failedAt)) failedAt = 0; // an unknown identifier fails the whole batch, as on AWS
      reason = "partial batch failure";
    } catch (error) {
      reason = (error as Error).message;
      if (options.bisectBatchOnError && pending.length > 1) {
        const half = Math.ceil(pending.length / 2);
        return (
          (await deliver(options, shardId, pending.slice(0, half), handler, faults)) &&
          (await deliver(options, shardId, pending.slice(half), handler, faults))
        );
      }
      failedAt = 0;
    }
    pending = pending.slice(failedAt);
    retries += 1;
    if (options.maxRetryAttempts >= 0 && retries > options.maxRetryAttempts) {
      await sendToOnFailure(options, shardId, pending, reason);
      return true;
    }
    await sleep(Math.min(100 * 2 ** Math.min(retries, 6), 5_000), options.isStopping);
  }
  return true;
}

async function sendToOnFailure(
  options: KinesisSourceOptions,
  shardId: string,
  records: readonly KinesisStreamRecord[],
  reason: string,
): Promise<void> {
  const first = records[0]?.kinesis.sequenceNumber ?? "";
  const last = records.at(-1)?.kinesis.sequenceNumber ?? "";
  // The same shape AWS sends to an on-failure destination: where the batch is, not its bytes.
  await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: options.onFailureQueueUrl,
      MessageBody: JSON.stringify({
        requestContext: { functionArn: options.functionName, condition: "RetryAttemptsExhausted", reason },
        KinesisBatchInfo: {
          shardId,
          startSequenceNumber: first,
          endSequenceNumber: last,
          batchSize: records.length,
          streamArn: options.streamArn,
        },
      }),
    }),
  );
}

async function readCheckpoint(table: string, id: string): Promise<string | undefined> {
  const result = await dynamoClient().send(new GetCommand({ TableName: table, Key: { id }, ConsistentRead: true }));
  return result.Item?.sequenceNumber as string | undefined;
}

async function writeCheckpoint(table: string, id: string, sequenceNumber: string): Promise<void> {
  await dynamoClient().send(new PutCommand({ TableName: table, Item: { id, sequenceNumber } }));
}

function toRecord(record: _Record, shardId: string, streamArn: string): KinesisStreamRecord {
  const sequenceNumber = record.SequenceNumber ?? "";
  return {
    kinesis: {
      kinesisSchemaVersion: "1.0",
      partitionKey: record.PartitionKey ?? "",
      sequenceNumber,
      data: Buffer.from(record.Data ?? new Uint8Array()).toString("base64"),
      approximateArrivalTimestamp: (record.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000,
    },
    eventSource: "aws:kinesis",
    eventVersion: "1.0",
    eventID: `${shardId}:${sequenceNumber}`,
    eventName: "aws:kinesis:record",
    invokeIdentityArn: "arn:aws:iam::000000000000:role/local",
    awsRegion: streamArn.split(":")[3] ?? "us-east-1",
    eventSourceARN: streamArn,
  };
}

/** The longest wait between two reads of an idle shard. */
const maxIdlePollMs = 1_000;

/**
 * Reads on until the batch is full or its window (from its first record) has passed, as an event
 * source mapping with a batching window does: fewer, fuller invocations for a consumer that can
 * wait (the archiver writes one object a batch). The shard is read again when the window closes,
 * not at every write meanwhile: one read a window, not one an append.
 */
async function fillBatchWindow(
  options: KinesisSourceOptions,
  first: _Record[],
  iterator: string,
): Promise<{ records: _Record[]; next: string | undefined }> {
  const records = [...first];
  // At most a second locally, so a test or a warm-up does not wait the full window for the archive.
  const closes = Date.now() + Math.min(options.batchWindowSeconds ?? 0, 1) * 1000;
  let next: string | undefined = iterator;
  while (next !== undefined && records.length < options.batchSize && !options.isStopping()) {
    await sleep(closes - Date.now(), options.isStopping);
    if (options.isStopping()) break;
    let page: GetRecordsCommandOutput;
    try {
      page = await kinesisClient().send(
        new GetRecordsCommand({ ShardIterator: next, Limit: options.batchSize - records.length }),
      );
    } catch {
      break; // deliver what is in hand; the next read starts after it
    }
    records.push(...(page.Records ?? []));
    next = page.NextShardIterator;
    // The window has closed: read on only while pages come full (more is waiting).
    if ((page.Records ?? []).length === 0 || (page.MillisBehindLatest ?? 0) === 0) break;
  }
  return { records, next };
}

/** Sleeps, waking early when stopping (`isStopping` is a flag, not a signal: looked at every 50 ms). */
async function sleep(ms: number, isStopping: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end && !isStopping()) await wait(Math.min(50, end - Date.now()));
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
