/**
 * Invariant 6 inside the pipeline, fuzzed (fast-check, seeded, bounded runs): the Lambda entry
 * functions of the relay, a projection and a command handler are called with Kinesis and SQS
 * events whose records are garbage — random bytes, JSON of every shape, broken commits and
 * envelopes, oversized payloads — mixed with one valid record, against the local cloud.
 * Each call returns (no throw that would crash-loop a batch); garbage is dead-lettered or parked
 * with its reason, or reported as a batch item failure (bounded retries, then the queue's DLQ);
 * the valid record in the same batch is processed.
 */
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type {
  KinesisStreamBatchResponse,
  KinesisStreamRecord,
  SQSBatchResponse,
  SQSEvent,
  SQSRecord,
} from "aws-lambda";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readArchivedRecords, readManifests } from "../../shared/archive/reader.ts";
import { dynamoClient, sqsClient } from "../../shared/aws/clients.ts";
import { loadHandler } from "../../shared/entries/load.ts";
import { buildCommit, type Commit, parseCommit } from "../../shared/events/envelope.ts";
import { archiveBatch } from "../../shared/handlers/archiver.ts";
import { listParks } from "../../shared/handlers/parking.ts";
import { resolveEnv } from "../../shared/local-cloud/provision.ts";
import { envNames } from "../../shared/plan.ts";
import { localContext } from "../../shared/runner/lambda-context.ts";
import { removeDataDir, repoRoot, startSystem, type TestSystem, waitFor } from "../support/system.ts";

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
  // The handlers called here log every malformed record they meet; keep the test's output readable.
  process.env.POWERTOOLS_LOG_LEVEL = "CRITICAL";
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

const seed = 20261126;

/** Calls a planned function's Lambda entry in this process, with that function's environment. */
async function invoke<R>(functionId: string, event: unknown): Promise<R> {
  const fn = system.plan.functions.find((f) => f.id === functionId);
  if (fn === undefined) throw new Error(`no function ${functionId}`);
  Object.assign(process.env, resolveEnv(fn, system.resources));
  // As Lambda runs it: its module's handler, or the one the kit builds from its declaration.
  const handler = (await loadHandler(repoRoot, fn)) as (event: unknown, context: unknown) => Promise<R>;
  return handler(event, localContext(functionId, 30_000));
}

/** A commit as a command handler would append it. */
function commit(aggregateId: string, events: { type: string; data: Record<string, unknown> }[]): Commit {
  const commandId = `${aggregateId}-cmd`;
  const built = buildCommit(
    "events",
    {
      commandId,
      attempt: 1,
      service: "accounts",
      bus: "core",
      aggregateType: "Account",
      aggregateId,
      expectedVersion: 0,
      correlationId: commandId,
      causationId: commandId,
      now: new Date(),
    },
    events,
  );
  // As a command handler stamps them: AccountOpened is at schema version 2 (events/upcasters.ts).
  return {
    ...built,
    events: built.events.map((e) => (e.type === "AccountOpened" ? { ...e, schemaversion: 2 } : e)),
  };
}

const opened = (accountId: string) => commit(accountId, [{ type: "AccountOpened", data: { accountId, owner: "fz" } }]);

/** Garbage of every kind; `template` is a valid JSON value to break (a commit, an event, a command). */
function garbage(template: unknown): fc.Arbitrary<Buffer> {
  const broken = fc
    .tuple(fc.constantFrom(...Object.keys(template as object)), fc.jsonValue({ maxDepth: 2 }))
    .map(([key, value]) => ({ ...(template as object), [key]: value }));
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.string({ maxLength: 300 }).map((s) => Buffer.from(s)),
    fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
    broken.map((v) => Buffer.from(JSON.stringify(v))),
    fc.constantFrom(
      Buffer.alloc(0),
      Buffer.from("x".repeat(300_000)),
      Buffer.from(`${"[".repeat(50_000)}${"]".repeat(50_000)}`),
      Buffer.from('{"__proto__":{"polluted":true}}'),
      Buffer.from(JSON.stringify({ ...(template as object), events: [] })),
    ),
  );
}

let sequence = 10n ** 40n;
function kinesisRecord(data: Buffer, partitionKey: string): KinesisStreamRecord {
  sequence += 1n;
  return {
    kinesis: {
      kinesisSchemaVersion: "1.0",
      partitionKey,
      sequenceNumber: String(sequence),
      data: data.toString("base64"),
      approximateArrivalTimestamp: Date.now() / 1000,
    },
    eventSource: "aws:kinesis",
    eventVersion: "1.0",
    eventID: `shardId-000000000000:${sequence}`,
    eventName: "aws:kinesis:record",
    invokeIdentityArn: "arn:aws:iam::000000000000:role/fuzz",
    awsRegion: "us-east-1",
    eventSourceARN: "arn:aws:kinesis:us-east-1:000000000000:stream/fuzz",
  };
}

let messages = 0;
function sqsRecord(body: string, group: string): SQSRecord {
  messages += 1;
  return {
    messageId: `fz-msg-${messages}`,
    receiptHandle: "",
    body,
    attributes: {
      ApproximateReceiveCount: "1",
      SentTimestamp: String(Date.now()),
      SenderId: "fuzz",
      ApproximateFirstReceiveTimestamp: String(Date.now()),
      MessageGroupId: group,
      MessageDeduplicationId: `fz-dedup-${messages}`,
      SequenceNumber: String(messages),
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:fuzz.fifo",
    awsRegion: "us-east-1",
  };
}

/** Mixes one valid item into garbage at a position fast-check picks. */
const withValid = <T>(items: T[], valid: T, at: number): T[] => [
  ...items.slice(0, at % (items.length + 1)),
  valid,
  ...items.slice(at % (items.length + 1)),
];

const isCommit = (bytes: Buffer) => {
  try {
    parseCommit(bytes);
    return true;
  } catch {
    return false;
  }
};

describe("the relay under fuzzed stream records", () => {
  it("dead-letters every record that is not a commit, with its reason, and publishes the valid one", async () => {
    const deadLettered = new Set<string>();
    const relayFailures = system.resources.queueUrls.get("core-relay-failures") as string;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(garbage(opened("template")), { minLength: 1, maxLength: 5 }),
        fc.nat(),
        async (junk, at) => {
          run += 1;
          const accountId = `fz-relay-${run}`;
          const valid = kinesisRecord(Buffer.from(JSON.stringify(opened(accountId))), accountId);
          const records = withValid(
            junk.map((bytes, i) => kinesisRecord(bytes, `fz-junk-${i}`)),
            valid,
            at,
          );
          const response = await invoke<KinesisStreamBatchResponse>("core-relay", { Records: records });
          expect(response.batchItemFailures).toEqual([]);
          for (const record of records) {
            if (record !== valid && !isCommit(Buffer.from(record.kinesis.data, "base64"))) {
              deadLettered.add(record.kinesis.sequenceNumber);
            }
          }
          // The valid commit was arbitrated and published: its aggregate's head is at version 1.
          const head = await dynamoClient().send(
            new GetCommand({ TableName: process.env[envNames.arbitrationTable], Key: { id: `Account#${accountId}` } }),
          );
          expect(head.Item?.version).toBe(1);
        },
      ),
      { seed, numRuns: 25 },
    );
    // Every non-commit is in the relay's dead-letter queue, with the reason.
    const seen = new Map<string, unknown>();
    await waitFor(async () => {
      const page = await sqsClient().send(
        new ReceiveMessageCommand({ QueueUrl: relayFailures, MaxNumberOfMessages: 10, VisibilityTimeout: 300 }),
      );
      for (const m of page.Messages ?? []) {
        const body = JSON.parse(m.Body ?? "{}") as { sequenceNumber: string; reason: unknown };
        seen.set(body.sequenceNumber, body.reason);
      }
      return [...deadLettered].every((s) => seen.has(s)) ? true : undefined;
    }, "every malformed record in the relay's dead-letter queue");
    for (const s of deadLettered) expect(typeof seen.get(s)).toBe("string");
  });
});

describe("a projection under fuzzed queue messages", () => {
  it("parks or retries each garbage message with its reason and applies the valid event beside it", async () => {
    const table = system.resources.tableNames.get("accounts-balances") as string;
    const parkedGroups = new Set<string>();
    let run = 0;
    const event = opened("template").events[0];
    await fc.assert(
      fc.asyncProperty(fc.array(garbage(event), { minLength: 1, maxLength: 5 }), fc.nat(), async (junk, at) => {
        run += 1;
        const accountId = `fz-proj-${run}`;
        const valid = sqsRecord(JSON.stringify(opened(accountId).events[0]), `Account#${accountId}`);
        const junkRecords = junk.map((bytes, i) => sqsRecord(bytes.toString(), `fz-junk-${run}-${i}`));
        const response = await invoke<SQSBatchResponse>("accounts-balances", {
          Records: withValid(junkRecords, valid, at),
        } satisfies SQSEvent);
        // Only garbage may come back for a retry; the valid event is applied.
        const failed = response.batchItemFailures.map((f) => f.itemIdentifier);
        expect(failed).not.toContain(valid.messageId);
        for (const record of junkRecords) {
          if (!failed.includes(record.messageId)) parkedGroups.add(record.attributes.MessageGroupId as string);
        }
        const item = await dynamoClient().send(new GetCommand({ TableName: table, Key: { id: accountId } }));
        expect(item.Item).toMatchObject({ accountId, owner: "fz", balanceCents: 0, version: 1 });
      }),
      { seed: seed + 1, numRuns: 25 },
    );
    // Garbage not sent back for a retry was parked, with its reason (`canon dlq` lists it).
    const parks = new Map((await listParks(table)).map((p) => [p.head.group, p.head.reason]));
    for (const group of parkedGroups) {
      const reason = parks.get(group);
      // A garbage body that happens to be a valid event of another aggregate is applied, not parked.
      if (reason !== undefined) expect(reason.length).toBeGreaterThan(0);
    }
    expect(parks.size).toBeGreaterThan(0);
  });
});

describe("a command handler under fuzzed queue messages", () => {
  it("rejects or retries each garbage message and carries out the valid command beside it", async () => {
    const outcomes = system.resources.tableNames.get("accounts-outcomes") as string;
    let run = 0;
    const template = {
      commandId: "c",
      service: "accounts",
      command: { type: "OpenAccount", accountId: "a", owner: "o" },
      aggregateId: "a",
      receivedAt: new Date().toISOString(),
      correlationId: "c",
      causationId: "c",
    };
    await fc.assert(
      fc.asyncProperty(fc.array(garbage(template), { minLength: 1, maxLength: 4 }), fc.nat(), async (junk, at) => {
        run += 1;
        const accountId = `fz-cmd-${run}`;
        const commandId = `fz-cmd-${seed}-${run}`;
        const message = {
          ...template,
          commandId,
          correlationId: commandId,
          causationId: commandId,
          aggregateId: accountId,
          command: { type: "OpenAccount", accountId, owner: "fz" },
        };
        const valid = sqsRecord(JSON.stringify(message), accountId);
        const junkRecords = junk.map((bytes, i) => sqsRecord(bytes.toString(), `fz-cjunk-${run}-${i}`));
        const response = await invoke<SQSBatchResponse>("accounts-command-handler", {
          Records: withValid(junkRecords, valid, at),
        } satisfies SQSEvent);
        expect(response.batchItemFailures.map((f) => f.itemIdentifier)).not.toContain(valid.messageId);
        const outcome = await dynamoClient().send(new GetCommand({ TableName: outcomes, Key: { id: commandId } }));
        expect(outcome.Item?.status).toBe("accepted");
      }),
      { seed: seed + 2, numRuns: 8 },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("the archiver under retries with other batch boundaries", () => {
  it("counts every record once in the manifest, whatever overlapping batches delivered it", async () => {
    const bucket = system.resources.archiveBuckets.get("core") as string;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 6 })), { minLength: 1, maxLength: 6 }),
        async (size, steps) => {
          run += 1;
          const bus = `fz-archive-${run}`;
          const records = Array.from({ length: size }, (_, i) =>
            kinesisRecord(Buffer.from(JSON.stringify(opened(`${bus}-a${i}`))), `${bus}-a${i}`),
          );
          // Deliveries as at-least-once allows: each batch starts at or before where the last one
          // ended (a retry after a crash, a bisected retry), until everything was delivered.
          let end = 0;
          for (const [back, length] of [...steps, [0, size] as [number, number]]) {
            const start = Math.max(0, end - (back % (end + 1)));
            const batch = records.slice(start, Math.min(size, start + length));
            if (batch.length === 0) continue;
            await archiveBatch({ bus, bucket, streamName: "unused" }, "shardId-000000000000", batch);
            end = Math.max(end, start + batch.length);
          }
          let read = 0;
          for await (const _ of readArchivedRecords(bucket, bus)) read += 1;
          const [manifest] = await readManifests(bucket, bus);
          expect(read).toBe(size);
          expect(manifest?.records).toBe(size);
        },
      ),
      { seed: seed + 3, numRuns: 20 },
    );
  });
});
