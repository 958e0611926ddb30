/**
 * The replayer over the wire (shared/handlers/replayer.ts), as its warm-up state machine drives
 * it on AWS: chunk after chunk, each cursor passed to the next call.
 *
 * Prepare: a stream of commits (accepted ones, a lost race, a retried duplicate, a rejection)
 * in three parts: the first archived, the second appended before the subscription point but not
 * archived yet, the third appended after it (never archived here: on AWS it is in the queue's
 * buffer). The archive is written by the archiver handler itself, a few records per object.
 * Act: replay into the daily totals (a counter projection, which would count a lost race or a
 * duplicate twice if arbitration failed) once in one chunk, once in one-object chunks.
 * Assess: `done` stays false while the archive has not passed the subscription point, then both
 * replays end in the same table, equal to the fold of the accepted events, scratch items gone.
 */

import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordCommand,
} from "@aws-sdk/client-kinesis";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { KinesisStreamRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { upcasters } from "../../events/upcasters.ts";
import { dailyTotals } from "../../functions/accounts/daily-totals-projection.ts";
import { dynamoClient, kinesisClient, s3Client } from "../../shared/aws/clients.ts";
import { createTableIfMissing } from "../../shared/aws/tables.ts";
import { projectionLambda } from "../../shared/entries/projection.ts";
import { acceptedHistory } from "../../shared/events/arbitrate.ts";
import { buildCommit, type Commit } from "../../shared/events/envelope.ts";
import { archiverHandler } from "../../shared/handlers/archiver.ts";
import { type ReplayChunk, type ReplayCursor, replayerFor } from "../../shared/handlers/replayer.ts";
import { type LocalCloud, startLocalCloud } from "../../shared/local-cloud/cloud.ts";
import { localContext } from "../../shared/runner/lambda-context.ts";
import { removeDataDir, tempDataDir, waitFor } from "../support/system.ts";

const dataDir = tempDataDir("replayer");
const bus = "core";
const bucket = "replayer-test-archive";
const streamName = "replayer-test-stream";
const tables = { single: "replayer-test-single", chunked: "replayer-test-chunked" } as const;
const eventTypes = ["FundsDeposited", "FundsWithdrawn"];
let cloud: LocalCloud;

/** What the stream holds, in append order, with where each record landed. */
const appended: { commit: Commit; part: 1 | 2 | 3; shardId: string; sequenceNumber: string }[] = [];
let subscribedAt: string;

function account(
  id: string,
  expectedVersion: number,
  day: string,
  events: { type: string; data: Record<string, unknown> }[],
  commandId = `${id}-v${expectedVersion}`,
  kind: Commit["kind"] = "events",
): Commit {
  return buildCommit(
    kind,
    {
      commandId,
      attempt: 1,
      service: "accounts",
      bus,
      aggregateType: "Account",
      aggregateId: id,
      expectedVersion,
      correlationId: commandId,
      causationId: commandId,
      now: new Date(`${day}T10:00:00Z`),
    },
    events,
  );
}

const deposit = (id: string, version: number, day: string, cents: number, commandId?: string) =>
  account(id, version, day, [{ type: "FundsDeposited", data: { accountId: id, amountCents: cents } }], commandId);
const withdraw = (id: string, version: number, day: string, cents: number, commandId?: string) =>
  account(id, version, day, [{ type: "FundsWithdrawn", data: { accountId: id, amountCents: cents } }], commandId);

/** Before the subscription point, archived at once: opens, deposits, a lost race, a duplicate, a rejection. */
function partOne(): Commit[] {
  const day = "2026-11-20";
  const list: Commit[] = [];
  for (const id of ["a1", "a2", "a3", "a4"]) {
    list.push(account(id, 0, day, [{ type: "AccountOpened", data: { accountId: id, owner: `owner-${id}` } }]));
    for (let v = 1; v <= 4; v++) list.push(deposit(id, v, day, 100 * v));
  }
  list.push(withdraw("a1", 2, day, 7, "a1-lost-race")); // decided on version 2; version 3 is already there
  list.push(deposit("a2", 2, day, 200)); // the a2-v2 commit appended again (a retried PutRecord)
  list.push(
    account(
      "a3",
      5,
      day,
      [{ type: "CommandRejected", data: { command: "Withdraw", reason: "insufficient funds" } }],
      "a3-rejected",
      "rejection",
    ),
  );
  return list;
}

/** Before the subscription point, archived only later. */
function partTwo(): Commit[] {
  const day = "2026-11-21";
  return [deposit("a1", 5, day, 1000), deposit("a2", 5, day, 2000), withdraw("a3", 5, day, 30)];
}

/** After the subscription point: the queue's buffer holds it, the replay owes nothing. */
function partThree(): Commit[] {
  return [deposit("a4", 5, "2026-11-22", 5)];
}

async function append(commits: readonly Commit[], part: 1 | 2 | 3): Promise<void> {
  for (const commit of commits) {
    const put = await waitFor(
      () =>
        kinesisClient()
          .send(
            new PutRecordCommand({
              StreamName: streamName,
              PartitionKey: commit.aggregateId,
              Data: Buffer.from(JSON.stringify(commit)),
            }),
          )
          .catch(() => undefined),
      "a record on the stream",
    );
    appended.push({ commit, part, shardId: put.ShardId ?? "", sequenceNumber: put.SequenceNumber ?? "" });
  }
}

/** Archives the records of these parts with the archiver handler, three records per object, shard by shard. */
async function archive(parts: readonly number[]): Promise<void> {
  const wanted = new Set(appended.filter((a) => parts.includes(a.part)).map((a) => a.sequenceNumber));
  const shards = await kinesisClient().send(new ListShardsCommand({ StreamName: streamName }));
  for (const shard of shards.Shards ?? []) {
    const shardId = shard.ShardId ?? "";
    const records: KinesisStreamRecord[] = [];
    let iterator = (
      await kinesisClient().send(
        new GetShardIteratorCommand({ StreamName: streamName, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }),
      )
    ).ShardIterator;
    while (iterator) {
      const page = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: iterator }));
      for (const record of page.Records ?? []) {
        if (!wanted.has(record.SequenceNumber ?? "")) continue;
        records.push({
          kinesis: {
            kinesisSchemaVersion: "1.0",
            partitionKey: record.PartitionKey ?? "",
            sequenceNumber: record.SequenceNumber ?? "",
            data: Buffer.from(record.Data ?? new Uint8Array()).toString("base64"),
            approximateArrivalTimestamp: (record.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000,
          },
          eventSource: "aws:kinesis",
          eventVersion: "1.0",
          eventID: `${shardId}:${record.SequenceNumber}`,
          eventName: "aws:kinesis:record",
          invokeIdentityArn: "arn:aws:iam::000000000000:role/local",
          awsRegion: "us-east-1",
          eventSourceARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName}`,
        });
      }
      if ((page.Records ?? []).length === 0 || page.MillisBehindLatest === 0) break;
      iterator = page.NextShardIterator;
    }
    for (let i = 0; i < records.length; i += 3) {
      await archiverHandler({ Records: records.slice(i, i + 3) }, localContext("archiver", 60_000), () => {});
    }
  }
}

async function scan(table: string): Promise<Map<string, Record<string, unknown>>> {
  const items = (await dynamoClient().send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
  return new Map(items.map((item) => [String(item.id), item]));
}

/** One replayer per table: each its own projection handler (its runtime keeps the table it started with). */
function replayer(table: string, options: { chunkMs?: number } = {}) {
  process.env.CANON_TABLE = table;
  const handler = projectionLambda("accounts", dailyTotals);
  const replay = replayerFor(handler, { upcasters, ...options });
  return async (cursor: ReplayCursor | undefined): Promise<ReplayChunk> => {
    process.env.CANON_TABLE = table; // the replayer keeps its scratch items in the projection's table
    return replay({ cursor, subscribedAt }, localContext("replayer", 15 * 60_000), () => {}) as Promise<ReplayChunk>;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  cloud = await startLocalCloud({ dataDir });
  Object.assign(process.env, cloud.env, {
    CANON_BUS: bus,
    CANON_ARCHIVE_BUCKET: bucket,
    CANON_STREAM_NAME: streamName,
    CANON_CONSUMER_FUNCTION: "accounts-daily-totals",
    CANON_PROJECTION_EVENTS: JSON.stringify(eventTypes),
  });
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  await kinesisClient().send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 2 }));
  await Promise.all(Object.values(tables).map((name) => createTableIfMissing(name)));

  await append(partOne(), 1);
  await archive([1]);
  await append(partTwo(), 2);
  // Arrival times may be whole seconds: part two arrives strictly before the point, part three after.
  await sleep(1100);
  subscribedAt = new Date().toISOString();
  await sleep(1100);
  await append(partThree(), 3);
});

afterAll(async () => {
  await cloud?.stop();
  removeDataDir(dataDir);
});

/** The daily totals the accepted events of parts one and two fold to. */
function expectedTotals(): Map<string, { depositsCents: number; withdrawalsCents: number; events: number }> {
  const totals = new Map<string, { depositsCents: number; withdrawalsCents: number; events: number }>();
  const before = appended.filter((a) => a.part !== 3).map((a) => a.commit);
  for (const commit of acceptedHistory(before)) {
    for (const event of commit.events) {
      if (!eventTypes.includes(event.type)) continue;
      const day = event.time.slice(0, 10);
      const total = totals.get(day) ?? { depositsCents: 0, withdrawalsCents: 0, events: 0 };
      const cents = Number(event.data.amountCents);
      totals.set(day, {
        depositsCents: total.depositsCents + (event.type === "FundsDeposited" ? cents : 0),
        withdrawalsCents: total.withdrawalsCents + (event.type === "FundsWithdrawn" ? cents : 0),
        events: total.events + 1,
      });
    }
  }
  return totals;
}

describe("the replayer", () => {
  const single = replayer(tables.single);
  const chunked = replayer(tables.chunked, { chunkMs: 0 });
  const partOneEvents = () =>
    acceptedHistory(appended.filter((a) => a.part === 1).map((a) => a.commit))
      .flatMap((c) => c.events)
      .filter((e) => eventTypes.includes(e.type)).length;

  let singleCursor: ReplayCursor | undefined;
  let chunkedCursor: ReplayCursor | undefined;

  it("is not done while a record from before the subscription point is not archived", async () => {
    const first = await single(undefined);
    expect(first).toMatchObject({ done: false, events: partOneEvents() });
    const again = await single(first.cursor);
    expect(again).toMatchObject({ done: false, events: 0 });
    expect(again.cursor).toEqual(first.cursor); // nothing new: the state machine waits and asks again
    singleCursor = again.cursor;

    const chunks: ReplayChunk[] = [];
    for (let chunk = await chunked(undefined); ; chunk = await chunked(chunk.cursor)) {
      chunks.push(chunk);
      if (chunk.cursor.objects === chunks.at(-2)?.cursor.objects) break;
    }
    chunkedCursor = chunks.at(-1)?.cursor;
    expect(chunks.every((chunk) => !chunk.done)).toBe(true);
    expect(chunks.length).toBeGreaterThan(4); // one archive object per chunk
    expect(chunkedCursor?.events).toBe(partOneEvents());
    // Between chunks, the arbitration heads wait in the projection's table.
    const scratch = [...(await scan(tables.chunked)).keys()].filter((id) => id.startsWith("replay#"));
    expect(scratch.length).toBeGreaterThan(0);
  });

  it("is done once the archive has passed the subscription point, in one chunk or in many, with equal tables", async () => {
    await archive([2]);

    const last = await single(singleCursor);
    expect(last.done).toBe(true);
    expect(last.events).toBe(3); // part two: two deposits and a withdrawal

    const tail: ReplayChunk[] = [];
    for (let chunk = await chunked(chunkedCursor); ; chunk = await chunked(chunk.cursor)) {
      tail.push(chunk);
      if (chunk.done) break;
      expect(tail.length).toBeLessThan(20);
    }
    expect(tail.length).toBeGreaterThan(1); // part two's objects, one per chunk
    expect(tail.slice(0, -1).every((chunk) => !chunk.done)).toBe(true);
    expect(tail.at(-1)?.cursor.events).toBe(last.cursor.events);

    const [one, many] = await Promise.all([scan(tables.single), scan(tables.chunked)]);
    expect(Object.fromEntries(many)).toEqual(Object.fromEntries(one));
    expect([...one.keys()].filter((id) => id.startsWith("replay#"))).toEqual([]);

    const views = Object.fromEntries(
      [...one.values()]
        .filter((item) => !String(item.id).includes("#"))
        .map((item) => [
          item.id,
          { depositsCents: item.depositsCents, withdrawalsCents: item.withdrawalsCents, events: item.events },
        ]),
    );
    expect(views).toEqual(Object.fromEntries(expectedTotals()));
    // The lost race (7 cents) and the duplicate (a second 200) are not in it; part three is not either.
    expect(views["2026-11-20"]).toEqual({ depositsCents: 4 * 1000, withdrawalsCents: 0, events: 16 });
    expect(views["2026-11-22"]).toBeUndefined();
  });
});
