/**
 * The projection runtime over the wire (DynamoDB in the local cloud, no mocks): handlers are
 * invoked with real SQS event shapes, as the Lambda service would, including duplicates,
 * concurrent redeliveries, stale replays, poison events, parking and redrive.
 */

import { randomUUID } from "node:crypto";
import { DynamoDBClient, waitUntilTableExists } from "@aws-sdk/client-dynamodb";
import { GetCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { SQSRecord } from "aws-lambda";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient } from "../../shared/aws/clients.ts";
import { createTableIfMissing } from "../../shared/aws/tables.ts";
import { buildCommit, type EventEnvelope } from "../../shared/events/envelope.ts";
import { counterProjection } from "../../shared/handlers/counters.ts";
import { listParks, type RedriveRequest } from "../../shared/handlers/parking.ts";
import {
  aggregateProjection,
  type ProjectionDefinition,
  type ProjectionHandler,
  projectionHandler,
} from "../../shared/handlers/projection.ts";
import { type LocalCloud, startLocalCloud } from "../../shared/local-cloud/cloud.ts";
import { envNames } from "../../shared/plan.ts";
import { removeDataDir, tempDataDir } from "../support/system.ts";

const dataDir = tempDataDir("projection-runtime");
let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud({ dataDir });
  Object.assign(process.env, cloud.env);
});

afterAll(async () => {
  await cloud?.stop();
  removeDataDir(dataDir);
});

/** A fresh table, set as the projection's own (CANON_TABLE), as the plan does for a function. */
async function freshTable(): Promise<string> {
  const name = `t-${randomUUID()}`;
  const dynamo = new DynamoDBClient({});
  await createTableIfMissing(name);
  await waitUntilTableExists({ client: dynamo, maxWaitTime: 30, minDelay: 0.05, maxDelay: 0.2 }, { TableName: name });
  dynamo.destroy();
  process.env[envNames.table] = name;
  return name;
}

/** A fresh handler on a fresh table (the runtime reads its table on first use, like a cold start). */
async function deploy(definition: ProjectionDefinition): Promise<{ handler: ProjectionHandler; table: string }> {
  const table = await freshTable();
  const handler = projectionHandler(definition);
  await handler({ Records: [] });
  return { handler, table };
}

function event(
  aggregateId: string,
  version: number,
  data: Record<string, unknown> = {},
  time = "2026-01-01",
): EventEnvelope {
  const commit = buildCommit(
    "events",
    {
      commandId: `cmd-${aggregateId}-${version}`,
      attempt: 1,
      service: "things",
      bus: "core",
      aggregateType: "Thing",
      aggregateId,
      expectedVersion: version - 1,
      correlationId: "c",
      causationId: "c",
      now: new Date(`${time}T12:00:00Z`),
    },
    [{ type: "ThingHappened", data }],
  );
  return commit.events[0] as EventEnvelope;
}

let messages = 0;
function record(body: EventEnvelope | RedriveRequest | string, receives = 1, group?: string): SQSRecord {
  messages += 1;
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const messageGroup =
    group ?? (typeof body === "object" && "subject" in body ? `${body.aggregatetype}#${body.subject}` : "Thing#x");
  return {
    messageId: `m-${messages}`,
    receiptHandle: `r-${messages}`,
    body: text,
    attributes: {
      ApproximateReceiveCount: String(receives),
      SentTimestamp: "0",
      SenderId: "test",
      ApproximateFirstReceiveTimestamp: "0",
      MessageGroupId: messageGroup,
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:test.fifo",
    awsRegion: "us-east-1",
  };
}

const failedIds = (response: { batchItemFailures: { itemIdentifier: string }[] }) =>
  response.batchItemFailures.map((f) => f.itemIdentifier).sort();

async function get<T>(table: string, id: string): Promise<T | undefined> {
  return (await dynamoClient().send(new GetCommand({ TableName: table, Key: { id }, ConsistentRead: true }))).Item as
    | T
    | undefined;
}

interface History {
  readonly id: string;
  readonly version: number;
  readonly seen: readonly number[];
}

/** A projection that records the order it saw each aggregate's versions in, and lines as facts. */
const history = (fails: (event: EventEnvelope) => boolean = () => false) =>
  aggregateProjection<History>({
    name: "things.history",
    evolve(item, e) {
      if (fails(e)) throw new Error(`cannot apply ${e.id}`);
      return { id: e.subject, version: e.aggregateversion, seen: [...(item?.seen ?? []), e.aggregateversion] };
    },
    facts: (e) => [{ id: `line#${e.subject}#${e.aggregateversion}`, eventId: e.id }],
  });

describe("an aggregate projection", () => {
  it("applies each event once, in order, whatever is duplicated, replayed or delivered concurrently", async () => {
    const { handler, table } = await deploy(history());
    const a = [1, 2, 3, 4, 5].map((v) => event("a", v));
    const b = [1, 2, 3].map((v) => event("b", v));
    // A batch with two groups; then the same again (a lost ack), twice at once (a visibility overrun).
    const batch = [a[0], b[0], a[1], a[2], b[1]].map((e) => record(e as EventEnvelope));
    expect(failedIds(await handler({ Records: batch }))).toEqual([]);
    const again = await Promise.all([handler({ Records: batch }), handler({ Records: batch })]);
    expect(again.flatMap(failedIds)).toEqual([]);
    // Stale replays of old events mixed with new ones, delivered concurrently.
    const later = [a[0], a[3], a[1], a[4], b[2], b[0]].map((e) => record(e as EventEnvelope));
    await Promise.all([handler({ Records: later }), handler({ Records: later })]);
    expect(await get<History>(table, "a")).toEqual({ id: "a", version: 5, seen: [1, 2, 3, 4, 5] });
    expect(await get<History>(table, "b")).toEqual({ id: "b", version: 3, seen: [1, 2, 3] });
    // Facts (one item per event, written with BatchWriteItem) are all there.
    for (const e of [...a, ...b]) {
      expect(await get(table, `line#${e.subject}#${e.aggregateversion}`)).toEqual({
        id: `line#${e.subject}#${e.aggregateversion}`,
        eventId: e.id,
      });
    }
  });
});

interface Totals {
  readonly events: number;
  readonly inCents: number;
  readonly outCents: number;
}

const totals = (shardBytes: number) =>
  counterProjection({
    name: "things.totals",
    shardBytes,
    key: (e) => String(e.data.bucket),
    initial: (bucket) => ({ bucket, inCents: 0, outCents: 0 }),
    add: (e): Record<string, number> => {
      const amount = Number(e.data.amount);
      return amount >= 0 ? { inCents: amount } : { outCents: -amount };
    },
  });

describe("a counter projection (many aggregates into one item)", () => {
  it("is exact under duplicates, replays and concurrent redeliveries, across shard roll-overs", async () => {
    // Tiny shards (about three ids each), so a run rolls over many times, concurrently.
    const { handler, table } = await deploy(totals(150));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ account: fc.integer({ min: 0, max: 5 }), amount: fc.integer({ min: -500, max: 500 }) }), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 60 }),
        async (moves, redeliveries) => {
          const bucket = randomUUID().slice(0, 8);
          const versions = new Map<number, number>();
          const events = moves.map((m) => {
            const version = (versions.get(m.account) ?? 0) + 1;
            versions.set(m.account, version);
            return event(`acct-${bucket}-${m.account}`, version, { bucket, amount: m.amount });
          });
          // Every event once, plus duplicates picked by the property, in batches of up to ten,
          // handled by three "instances" at once.
          const deliveries = [...events, ...redeliveries.map((n) => events[n % events.length] as EventEnvelope)];
          const batches: SQSRecord[][] = [];
          for (let i = 0; i < deliveries.length; i += 10)
            batches.push(deliveries.slice(i, i + 10).map((e) => record(e)));
          const lanes = [0, 1, 2].map(async (lane) => {
            for (let i = lane; i < batches.length; i += 3) {
              expect(failedIds(await handler({ Records: batches[i] as SQSRecord[] }))).toEqual([]);
            }
          });
          await Promise.all(lanes);
          const expected = {
            events: events.length,
            inCents: moves.reduce((sum, m) => sum + Math.max(m.amount, 0), 0),
            outCents: moves.reduce((sum, m) => sum + Math.max(-m.amount, 0), 0),
          };
          expect(await get<Totals>(table, bucket)).toEqual({ id: bucket, bucket, ...expected });
        },
      ),
      { numRuns: 12 },
    );
    // The shards stayed within their bound (150 bytes of ids, plus at most one id).
    const shards = (await dynamoClient().send(new ScanCommand({ TableName: table }))).Items ?? [];
    const shardItems = shards.filter((item) => String(item.id).includes("#"));
    expect(shardItems.length).toBeGreaterThan(12);
    for (const shard of shardItems) expect(shard.bytes).toBeLessThanOrEqual(150 + 100);
  });
});

describe("a poison event", () => {
  it("parks its aggregate after the threshold, not its neighbours; redrive restores the order", async () => {
    let broken = true;
    const { handler, table } = await deploy(history((e) => broken && e.data.poison === true));
    const a = [event("a", 1), event("a", 2, { poison: true }), event("a", 3), event("a", 4)];
    const b = [event("b", 1), event("b", 2)];

    // Receives 1 and 2: a2 fails; a3 (behind it in the batch) is retried with it; b flows.
    const first = [
      record(a[0] as EventEnvelope),
      record(a[1] as EventEnvelope),
      record(b[0] as EventEnvelope),
      record(a[2] as EventEnvelope),
    ];
    const firstFailures = failedIds(await handler({ Records: first }));
    expect(firstFailures).toEqual([first[1]?.messageId, first[3]?.messageId].sort());
    const second = [record(a[1] as EventEnvelope, 2), record(a[2] as EventEnvelope, 2), record(b[1] as EventEnvelope)];
    expect(failedIds(await handler({ Records: second }))).toHaveLength(2);
    expect(await listParks(table)).toEqual([]);
    // Receive 3 (the threshold): a2 is parked and acknowledged, a3 is parked behind it.
    const third = [record(a[1] as EventEnvelope, 3), record(a[2] as EventEnvelope, 3)];
    expect(failedIds(await handler({ Records: third }))).toEqual([]);
    // a4 arrives later: parked too (and a redelivery of it is not parked twice).
    const late = record(a[3] as EventEnvelope);
    await handler({ Records: [late] });
    await handler({ Records: [{ ...late, attributes: { ...late.attributes, ApproximateReceiveCount: "2" } }] });

    expect(await get<History>(table, "a")).toMatchObject({ version: 1, seen: [1] });
    expect(await get<History>(table, "b")).toMatchObject({ version: 2, seen: [1, 2] });
    const [park, ...others] = await listParks(table);
    expect(others).toEqual([]);
    expect(park?.head).toMatchObject({ group: "Thing#a", attempts: 3, failedEventId: a[1]?.id });
    expect(park?.head.reason).toMatch(/cannot apply/);
    expect(park?.events.map((e) => e.version)).toEqual([2, 3, 4]);
    expect(park?.events[0]?.reason).toMatch(/cannot apply/);
    expect(park?.events[1]?.reason).toBe(`parked behind ${a[1]?.id}`);

    // A redrive while still broken: a2 fails again, nothing moves, the reason says why.
    const redrive = (requestId: string, skip?: string): RedriveRequest => ({
      canon: "redrive",
      group: "Thing#a",
      requestId,
      requestedAt: new Date().toISOString(),
      skip,
    });
    expect(failedIds(await handler({ Records: [record(redrive("r1"), 1, "Thing#a")] }))).toEqual([]);
    const [stillParked] = await listParks(table);
    expect(stillParked?.head.lastRedrive).toMatchObject({ requestId: "r1", eventId: a[1]?.id });
    expect(stillParked?.events).toHaveLength(3);

    // Fixed: the redrive applies a2, a3, a4 in order and clears the park; a5 then flows as usual.
    broken = false;
    await handler({ Records: [record(redrive("r2"), 1, "Thing#a"), record(event("a", 5))] });
    expect(await listParks(table)).toEqual([]);
    expect(await get<History>(table, "a")).toMatchObject({ version: 5, seen: [1, 2, 3, 4, 5] });
  });

  it("can be skipped by an operator, only at the head of the park, and is kept on record", async () => {
    const { handler, table } = await deploy(history((e) => e.data.poison === true));
    const poison = event("c", 1, { poison: true });
    await handler({ Records: [record(poison, 3), record(event("c", 2), 3)] });
    expect((await listParks(table))[0]?.events).toHaveLength(2);
    const request = (skip: string): RedriveRequest => ({
      canon: "redrive",
      group: "Thing#c",
      requestId: randomUUID(),
      requestedAt: "",
      skip,
    });
    // Naming an event that is not at the head skips nothing.
    await handler({ Records: [record(request("not-the-head"), 1, "Thing#c")] });
    expect((await listParks(table))[0]?.events).toHaveLength(2);
    await handler({ Records: [record(request(poison.id), 1, "Thing#c")] });
    expect(await listParks(table)).toEqual([]);
    expect(await get<History>(table, "c")).toMatchObject({ version: 2, seen: [2] });
    expect(await get(table, "skipped#Thing#c#0000000000")).toMatchObject({ eventId: poison.id, kind: "skipped-event" });
  });

  it("parks a malformed message at once, with the parser's reason", async () => {
    const { handler, table } = await deploy(history());
    const response = await handler({ Records: [record('{"not":"an event"}', 1, "Thing#d")] });
    expect(failedIds(response)).toEqual([]);
    const [park] = await listParks(table);
    expect(park?.head.group).toBe("Thing#d");
    expect(park?.head.reason).toMatch(/MalformedMessageError: event is invalid at specversion/);
  });

  it("whose claim check cannot be read yet is retried like a failure, then parked", async () => {
    const { handler, table } = await deploy(history());
    const claimed = {
      ...event("f", 1),
      data: {},
      claimcheck: { bucket: "no-such-bucket", key: "claims/events/x.json", bytes: 10, sha256: "0".repeat(64) },
    };
    const first = record(JSON.stringify(claimed), 1, "Thing#f");
    expect(failedIds(await handler({ Records: [first] }))).toEqual([first.messageId]);
    expect(await listParks(table)).toEqual([]);
    expect(failedIds(await handler({ Records: [record(JSON.stringify(claimed), 3, "Thing#f")] }))).toEqual([]);
    const [park] = await listParks(table);
    expect(park?.head.reason).toMatch(/ClaimCheckError: claim check s3:\/\/no-such-bucket/);
  });

  it("without a park threshold, is left to the queue's dead-letter queue (failed, never acknowledged)", async () => {
    const { handler, table } = await deploy({
      name: "things.legacy",
      async apply() {
        throw new Error("always");
      },
    });
    const records = [record(event("e", 1), 10), record(event("e", 2), 10)];
    expect(failedIds(await handler({ Records: records }))).toEqual(records.map((r) => r.messageId).sort());
    expect(await listParks(table)).toEqual([]);
  });
});
