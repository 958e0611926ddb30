/**
 * Projections apply a batch, not an event, over the wire (DynamoDB in the local cloud, no
 * mocks): the batch's items are read at once, each aggregate's events folded in memory, and
 * each changed item written once, conditionally. The DynamoDB calls are counted by an SDK
 * middleware on the runtime's own client, as `npm run bench` counts them.
 */

import { randomUUID } from "node:crypto";
import { DynamoDBClient, waitUntilTableExists } from "@aws-sdk/client-dynamodb";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { SQSRecord } from "aws-lambda";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { dynamoClient } from "../../shared/aws/clients.ts";
import { createTableIfMissing } from "../../shared/aws/tables.ts";
import type { Decider } from "../../shared/domain/decider.ts";
import { buildCommit, type EventEnvelope, type NewEvent } from "../../shared/events/envelope.ts";
import {
  areCommitsAccepted,
  commitMarkerKey,
  readStates,
  type StateItem,
  stateKey,
  stateProjectionHandler,
} from "../../shared/handlers/aggregate-state.ts";
import { counterProjection } from "../../shared/handlers/counters.ts";
import {
  aggregateProjection,
  type ProjectionDefinition,
  type ProjectionHandler,
  projectionHandler,
} from "../../shared/handlers/projection.ts";
import { type LocalCloud, startLocalCloud } from "../../shared/local-cloud/cloud.ts";
import { envNames } from "../../shared/plan.ts";
import { removeDataDir, tempDataDir } from "../support/system.ts";

const dataDir = tempDataDir("projection-batch");
let cloud: LocalCloud;

/** Every DynamoDB call the runtime's client made since the last reset, in order (`Operation`). */
const calls: string[] = [];

interface Stack {
  middlewareStack: {
    add(middleware: (next: (args: unknown) => Promise<unknown>, context: object) => unknown, options: object): void;
  };
}

beforeAll(async () => {
  cloud = await startLocalCloud({ dataDir });
  Object.assign(process.env, cloud.env);
  (dynamoClient() as unknown as Stack).middlewareStack.add(
    (next, context) => async (args: unknown) => {
      calls.push(String((context as { commandName?: string }).commandName).replace(/Command$/, ""));
      return next(args);
    },
    { step: "initialize", name: "projectionBatchCallCounter" },
  );
});

afterAll(async () => {
  await cloud?.stop();
  removeDataDir(dataDir);
});

beforeEach(() => {
  calls.length = 0;
});

/** Calls by operation, e.g. `{ BatchGetItem: 1, PutItem: 2 }`. */
function countOf(list: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const call of list) counts[call] = (counts[call] ?? 0) + 1;
  return counts;
}

/** The calls `run` makes. */
async function counted(run: () => Promise<unknown>): Promise<string[]> {
  calls.length = 0;
  await run();
  return [...calls];
}

/** A fresh table, set as the projection's own (CANON_TABLE), as the plan does for a function. */
async function freshTable(): Promise<string> {
  const table = `t-${randomUUID()}`;
  const dynamo = new DynamoDBClient({});
  await createTableIfMissing(table);
  await waitUntilTableExists({ client: dynamo, maxWaitTime: 30, minDelay: 0.05, maxDelay: 0.2 }, { TableName: table });
  dynamo.destroy();
  process.env[envNames.table] = table;
  return table;
}

/** A fresh handler on a fresh table, warmed up as after a cold start (it reads its table on first use). */
async function deploy(
  definition: ProjectionDefinition | ProjectionHandler,
): Promise<{ handler: ProjectionHandler; table: string }> {
  const table = await freshTable();
  const handler = typeof definition === "function" ? definition : projectionHandler(definition);
  await handler({ Records: [] });
  return { handler, table };
}

/** A commit of `count` events for an aggregate, from version `from` on. */
function commitEvents(
  aggregateId: string,
  from: number,
  count = 1,
  data: (version: number) => Record<string, unknown> = () => ({}),
  time = "2026-01-01",
): EventEnvelope[] {
  const commit = buildCommit(
    "events",
    {
      commandId: `cmd-${aggregateId}-${from}`,
      attempt: 1,
      service: "things",
      bus: "core",
      aggregateType: "Thing",
      aggregateId,
      expectedVersion: from - 1,
      correlationId: "c",
      causationId: "c",
      now: new Date(`${time}T12:00:00Z`),
    },
    Array.from({ length: count }, (_, i) => ({ type: "ThingHappened", data: data(from + i) })),
  );
  return commit.events;
}

const event = (aggregateId: string, version: number, data: Record<string, unknown> = {}, time?: string) =>
  commitEvents(aggregateId, version, 1, () => data, time)[0] as EventEnvelope;

let messages = 0;
function record(body: EventEnvelope, receives = 1): SQSRecord {
  messages += 1;
  return {
    messageId: `m-${messages}`,
    receiptHandle: `r-${messages}`,
    body: JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: String(receives),
      SentTimestamp: "0",
      SenderId: "test",
      ApproximateFirstReceiveTimestamp: "0",
      MessageGroupId: `${body.aggregatetype}#${body.subject}`,
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:test.fifo",
    awsRegion: "us-east-1",
  };
}

const failedIds = (response: { batchItemFailures: { itemIdentifier: string }[] }) =>
  response.batchItemFailures.map((f) => f.itemIdentifier);

async function get<T>(table: string, id: string): Promise<T | undefined> {
  const result = await dynamoClient().send(new GetCommand({ TableName: table, Key: { id }, ConsistentRead: true }));
  return result.Item as T | undefined;
}

interface History {
  readonly id: string;
  readonly version: number;
  readonly seen: readonly number[];
}

/** Records the order it saw each aggregate's versions in; one line per event as a fact when `lines`. */
const history = (lines: boolean) =>
  aggregateProjection<History>({
    name: "things.history",
    evolve: (item, e) => ({
      id: e.subject,
      version: e.aggregateversion,
      seen: [...(item?.seen ?? []), e.aggregateversion],
    }),
    facts: lines ? (e) => [{ id: `line#${e.subject}#${e.aggregateversion}`, eventId: e.id }] : undefined,
  });

/** Ten events over two aggregates, interleaved as a FIFO queue delivers two groups. */
function interleaved(a: string, b: string): EventEnvelope[] {
  return [1, 2, 3, 4, 5].flatMap((v) => [event(a, v), event(b, v)]);
}

describe("a batch of an aggregate projection", () => {
  it("costs one BatchGetItem (items and park heads), one BatchWriteItem of facts and one PutItem per aggregate", async () => {
    const { handler, table } = await deploy(history(true));
    const batch = interleaved("a", "b").map((e) => record(e));
    const made = await counted(async () => expect(failedIds(await handler({ Records: batch }))).toEqual([]));
    expect(countOf(made)).toEqual({ BatchGetItem: 1, BatchWriteItem: 1, PutItem: 2 });
    // Facts first: an item moves past an event only once the event's facts are stored.
    expect(made.indexOf("BatchWriteItem")).toBeLessThan(made.indexOf("PutItem"));
    expect(await get(table, "a")).toEqual({ id: "a", version: 5, seen: [1, 2, 3, 4, 5] });
    expect(await get(table, "line#b#5")).toMatchObject({ id: "line#b#5" });

    // Redelivered whole (a lost ack): read, nothing new, nothing written.
    const again = await counted(() =>
      handler({ Records: batch.map((r) => ({ ...r, messageId: `${r.messageId}-2` })) }),
    );
    expect(countOf(again)).toEqual({ BatchGetItem: 1 });
  });

  it("without facts, costs one BatchGetItem and one PutItem per aggregate: 0.3 calls an event", async () => {
    const { handler } = await deploy(history(false));
    const made = await counted(() => handler({ Records: interleaved("a", "b").map((e) => record(e)) }));
    expect(countOf(made)).toEqual({ BatchGetItem: 1, PutItem: 2 });
  });

  it("ends equal to the fold, whatever is duplicated, redelivered, interleaved or delivered concurrently", async () => {
    const { handler, table } = await deploy(history(true));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { minLength: 40, maxLength: 40 }),
        fc.array(
          fc.record({ back: fc.nat({ max: 6 }), sizes: fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 3 }) }),
          { minLength: 1, maxLength: 12 },
        ),
        async (lengths, picks, rounds) => {
          run += 1;
          const ids = lengths.map((_, i) => `p${run}-${i}`);
          // The accepted events, interleaved across aggregates as picked, each aggregate in order.
          const next = lengths.map(() => 1);
          const stream: EventEnvelope[] = [];
          for (let i = 0; stream.length < lengths.reduce((s, n) => s + n, 0); i++) {
            const open = lengths.map((n, a) => (next[a] as number) <= n).flatMap((ok, a) => (ok ? [a] : []));
            const a = open[(picks[i % picks.length] as number) % open.length] as number;
            stream.push(event(ids[a] as string, next[a] as number));
            next[a] = (next[a] as number) + 1;
          }
          // Rounds of deliveries as SQS FIFO allows them: each starts at or before what earlier
          // rounds applied (a redelivery goes back), some rounds deliver several overlapping
          // batches at once (a visibility timeout overrun), and old events come again inside
          // batches (replays, duplicates). Then one last round delivers what is left.
          let applied = 0;
          const schedule = [...rounds, { back: 0, sizes: [] as number[] }];
          for (const [r, { back, sizes }] of schedule.entries()) {
            const last = r === schedule.length - 1;
            const start = Math.max(0, applied - back);
            const windows = (last ? [stream.length - start] : [Math.min(10, 1 + back), ...sizes]).map((size) =>
              stream.slice(start, last ? stream.length : start + Math.min(size, 10)),
            );
            // One lane per window (its batches in order), the lanes at once.
            const lanes = windows.map((window) => {
              const withOld = window.map((e, i) => (i % 3 === 2 && start > 0 ? [stream[(i * 7) % start], e] : [e]));
              const records = withOld.flat().filter((e) => e !== undefined) as EventEnvelope[];
              const batches: EventEnvelope[][] = [];
              for (let i = 0; i < records.length; i += 10) batches.push(records.slice(i, i + 10));
              return batches;
            });
            await Promise.all(
              lanes.map(async (lane) => {
                for (const batch of lane) {
                  expect(failedIds(await handler({ Records: batch.map((e) => record(e)) }))).toEqual([]);
                }
              }),
            );
            applied = Math.max(applied, start + Math.max(...windows.map((w) => w.length)));
          }
          for (const [a, id] of ids.entries()) {
            const n = lengths[a] as number;
            const versions = Array.from({ length: n }, (_, i) => i + 1);
            expect(await get<History>(table, id)).toEqual({ id, version: n, seen: versions });
            for (const v of versions)
              expect(await get(table, `line#${id}#${v}`)).toMatchObject({ id: `line#${id}#${v}` });
          }
        },
      ),
      { numRuns: 15, seed: 20261201 },
    );
  });

  it("stops a group at the event that fails and applies its other groups, in the same batch", async () => {
    const failing = aggregateProjection<History>({
      name: "things.history",
      evolve(item, e) {
        if (e.data.poison === true) throw new Error(`cannot apply ${e.id}`);
        return { id: e.subject, version: e.aggregateversion, seen: [...(item?.seen ?? []), e.aggregateversion] };
      },
    });
    const { handler, table } = await deploy(failing);
    const a = [event("a", 1), event("a", 2), event("a", 3, { poison: true }), event("a", 4)];
    const b = [event("b", 1), event("b", 2)];
    const batch = [a[0], b[0], a[1], a[2], b[1], a[3]].map((e) => record(e as EventEnvelope));
    expect(failedIds(await handler({ Records: batch })).sort()).toEqual(
      [batch[3]?.messageId, batch[5]?.messageId].sort(),
    );
    expect(await get(table, "a")).toEqual({ id: "a", version: 2, seen: [1, 2] });
    expect(await get(table, "b")).toEqual({ id: "b", version: 2, seen: [1, 2] });
  });
  it("applies the other groups when a key one event names is refused by DynamoDB", async () => {
    const refused = aggregateProjection<History>({
      name: "things.history",
      // A key DynamoDB refuses (over 2,048 bytes): the whole batch read fails with it.
      key: (e) => (e.data.long === true ? "k".repeat(3000) : e.subject),
      evolve: (item, e) => ({
        id: e.subject,
        version: e.aggregateversion,
        seen: [...(item?.seen ?? []), e.aggregateversion],
      }),
    });
    const { handler, table } = await deploy(refused);
    const batch = [event("a", 1, { long: true }), event("b", 1), event("a", 2), event("b", 2)].map((e) => record(e));
    expect(failedIds(await handler({ Records: batch })).sort()).toEqual(
      [batch[0]?.messageId, batch[2]?.messageId].sort(),
    );
    expect(await get(table, "b")).toEqual({ id: "b", version: 2, seen: [1, 2] });
  });
});

interface Counter {
  readonly status: "none" | "counting";
  readonly total: number;
}

/** A tiny decider: each event adds its `n` to the total. */
const counterDecider: Decider<{ type: string }, NewEvent, Counter> = {
  initialState: { status: "none", total: 0 },
  decide: () => [],
  evolve: (state, e) => ({ status: "counting", total: state.total + Number(e.data.n ?? 0) }),
};

describe("a batch of a state projection", () => {
  it("writes the batch's commit markers before the state, then one conditional PutItem per aggregate", async () => {
    const { handler: state, table } = await deploy(stateProjectionHandler(counterDecider));
    // x: a commit of three events, then one of two; y: two commits of one event.
    const x = [...commitEvents("x", 1, 3, (v) => ({ n: v })), ...commitEvents("x", 4, 2, (v) => ({ n: v }))];
    const y = [...commitEvents("y", 1, 1, () => ({ n: 10 })), ...commitEvents("y", 2, 1, () => ({ n: 20 }))];
    const batch = [x[0], x[1], y[0], x[2], x[3], y[1], x[4]].map((e) => record(e as EventEnvelope));
    const made = await counted(async () => expect(failedIds(await state({ Records: batch }))).toEqual([]));
    expect(countOf(made)).toEqual({ BatchGetItem: 1, BatchWriteItem: 1, PutItem: 2 });
    expect(made.lastIndexOf("BatchWriteItem")).toBeLessThan(made.indexOf("PutItem"));
    expect(await get<StateItem<Counter>>(table, stateKey("x"))).toEqual({
      id: stateKey("x"),
      version: 5,
      lastCommitId: "cmd-x-4.1",
      state: { status: "counting", total: 15 },
    });
    const commits = [...new Set([...x, ...y].map((e) => e.commitid))];
    for (const commitId of commits) expect(await get(table, commitMarkerKey(commitId))).toBeDefined();

    // The command handler's batch reads: states and markers, one BatchGetItem each.
    const reads = await counted(async () => {
      const states = await readStates(table, ["x", "y", "never"], counterDecider.initialState);
      expect(states.get("y")).toMatchObject({ version: 2, state: { total: 30 } });
      expect(states.get("never")).toEqual({ id: stateKey("never"), version: 0, state: counterDecider.initialState });
      expect(await areCommitsAccepted(table, [...commits, "lost"])).toEqual(new Set(commits));
    });
    expect(countOf(reads)).toEqual({ BatchGetItem: 2 });
  });
});

describe("a batch of a counter projection", () => {
  it("counts each key's events with one UpdateItem and rewrites its sum once", async () => {
    const totals = counterProjection({
      name: "things.totals",
      key: (e) => e.time.slice(0, 10),
      initial: (date) => ({ date, cents: 0 }),
      add: (e) => ({ cents: Number(e.data.cents) }),
    });
    const { handler, table } = await deploy(totals);
    const days = ["2026-01-01", "2026-01-02"];
    const events = [1, 2, 3, 4, 5].flatMap((v) => [
      event("a", v, { cents: v }, days[v % 2]),
      event("b", v, { cents: 10 * v }, days[(v + 1) % 2]),
    ]);
    const batch = events.map((e) => record(e));
    const made = await counted(async () => expect(failedIds(await handler({ Records: batch }))).toEqual([]));
    expect(countOf(made)).toEqual({ BatchGetItem: 1, UpdateItem: 2, PutItem: 2 });
    const sum = (day: string) =>
      events.filter((e) => e.time.startsWith(day)).reduce((s, e) => s + Number(e.data.cents), 0);
    for (const day of days) expect(await get(table, day)).toMatchObject({ cents: sum(day), events: 5 });

    // Redelivered with new events: the counted ones are dropped before the update, not after.
    const more = [event("a", 6, { cents: 6 }, days[0]), event("b", 6, { cents: 60 }, days[0])];
    const again = await counted(() => handler({ Records: [...batch.slice(0, 4), ...more.map((e) => record(e))] }));
    expect(countOf(again)).toEqual({ BatchGetItem: 1, UpdateItem: 1, PutItem: 2 });
    expect(await get(table, days[0] as string)).toMatchObject({ cents: sum(days[0] as string) + 66, events: 7 });
  });
});
