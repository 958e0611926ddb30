/**
 * The benchmark's measurements that need no running pipeline, or only its emulators: the
 * engine in process, raw emulator hops (on resources of their own), raw BatchWriteItem; Lambda
 * bundles are bench/bundles.ts.
 * Each returns numbers; bench/run.ts pairs them into figures with their limits.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";
import { CreateTopicCommand, DeleteTopicCommand, PublishBatchCommand, SubscribeCommand } from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from "@aws-sdk/client-sqs";
import { BatchWriteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { type BalanceItem, evolveBalance } from "../functions/accounts/balances-projection.ts";
import type { AccountEvent } from "../functions/accounts/decider.ts";
import { dynamoClient } from "../shared/aws/clients.ts";
import { createTableIfMissing } from "../shared/aws/tables.ts";
import { arbitrateRun } from "../shared/events/arbitrate.ts";
import { buildCommit, type Commit, parseCommit } from "../shared/events/envelope.ts";
import type { BenchAws } from "./aws.ts";

/** Runs `step` in rounds until `seconds` have passed; returns rounds per second. */
function rate(seconds: number, step: () => void): number {
  const start = performance.now();
  let rounds = 0;
  while (performance.now() - start < seconds * 1000) {
    step();
    rounds += 1;
  }
  return rounds / ((performance.now() - start) / 1000);
}

/** Commits of deposits over `aggregates` accounts, as the stream holds them (JSON bytes). */
export function sampleCommits(events: number, aggregates: number): Buffer[] {
  const versions = new Map<string, number>();
  const commits: Buffer[] = [];
  for (let i = 0; i < events; i++) {
    const accountId = `bench-${i % aggregates}`;
    const version = versions.get(accountId) ?? 0;
    versions.set(accountId, version + 1);
    const commandId = `bench-cmd-${i}`;
    const type = version === 0 ? "AccountOpened" : "FundsDeposited";
    const data = version === 0 ? { accountId, owner: "bench" } : { accountId, amountCents: 1 + (i % 997) };
    const commit = buildCommit(
      "events",
      {
        commandId,
        attempt: 1,
        service: "accounts",
        bus: "core",
        aggregateType: "Account",
        aggregateId: accountId,
        expectedVersion: version,
        correlationId: commandId,
        causationId: commandId,
        now: new Date(1_764_000_000_000 + i),
      },
      [{ type, data }],
    );
    commits.push(Buffer.from(JSON.stringify(commit)));
  }
  return commits;
}

/** The engine's target (issue 14): at least half of JSON.parse's rate on the same bytes. */
export const engineTargetRatio = 0.5;

/** The engine's rate beside JSON.parse's, and where its time goes (µs per event, phase by phase). */
export interface EngineFigures {
  readonly eventsPerSecond: number;
  readonly rawParsePerSecond: number;
  readonly microsPerEvent: {
    /** `JSON.parse` of the record's text (and the bytes to text): the floor. */
    readonly parse: number;
    /** The envelope's checks (shared/events/envelope.ts), on top of the parse. */
    readonly check: number;
    readonly arbitrate: number;
    readonly evolve: number;
  };
}

/**
 * Engine: decode (schema-checked) + arbitrate + evolve, events/s, vs raw JSON.parse of the same
 * bytes; each phase also on its own. Measured in alternating slices of a tenth of a second
 * (2 × `seconds` in all), so a burst of load on a shared machine falls on every figure alike.
 */
export function measureEngine(events: number, seconds: number): EngineFigures {
  const bytes = sampleCommits(events, Math.max(1, Math.floor(events / 20)));
  const decoded: Commit[] = bytes.map((b) => parseCommit(b));
  const { verdicts } = arbitrateRun(new Map(), decoded);
  const evolveAll = (commits: readonly Commit[], accepted: readonly { verdict: string }[]) => {
    const balances = new Map<string, BalanceItem>();
    accepted.forEach((verdict, i) => {
      if (verdict.verdict !== "accepted") return;
      for (const e of (commits[i] as Commit).events) {
        const event = { type: e.type, data: e.data } as AccountEvent;
        balances.set(e.subject, evolveBalance(balances.get(e.subject), event, e.aggregateversion));
      }
    });
  };
  const steps = {
    engine: () => {
      const commits: Commit[] = bytes.map((b) => parseCommit(b));
      evolveAll(commits, arbitrateRun(new Map(), commits).verdicts);
    },
    raw: () => {
      for (const b of bytes) JSON.parse(b.toString());
    },
    decode: () => {
      for (const b of bytes) parseCommit(b);
    },
    arbitrate: () => arbitrateRun(new Map(), decoded),
    evolve: () => evolveAll(decoded, verdicts),
  };
  const rounds = new Map<keyof typeof steps, { rounds: number; ms: number }>();
  const slices = Math.max(1, Math.round((seconds * 2) / 0.1 / Object.keys(steps).length));
  for (let slice = 0; slice < slices; slice++) {
    for (const [name, step] of Object.entries(steps) as [keyof typeof steps, () => void][]) {
      const start = performance.now();
      const perSecond = rate(0.1, step);
      const ms = performance.now() - start;
      const sofar = rounds.get(name) ?? { rounds: 0, ms: 0 };
      rounds.set(name, { rounds: sofar.rounds + (perSecond * ms) / 1000, ms: sofar.ms + ms });
    }
  }
  const perSecond = (name: keyof typeof steps) => {
    const r = rounds.get(name) ?? { rounds: 0, ms: 1 };
    return (r.rounds / r.ms) * 1000 * events;
  };
  const micros = (name: keyof typeof steps) => 1e6 / perSecond(name);
  return {
    eventsPerSecond: perSecond("engine"),
    rawParsePerSecond: perSecond("raw"),
    microsPerEvent: {
      parse: round3(micros("raw")),
      check: round3(micros("decode") - micros("raw")),
      arbitrate: round3(micros("arbitrate")),
      evolve: round3(micros("evolve")),
    },
  };
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Per-call timings and the messages moved in `seconds` by `lanes` loops of `call`. */
async function throughput(
  seconds: number,
  lanes: number,
  call: () => Promise<number>,
): Promise<{ perSecond: number; callMs: number[] }> {
  const end = Date.now() + seconds * 1000;
  const callMs: number[] = [];
  let moved = 0;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (Date.now() < end) {
        const t = performance.now();
        moved += await call();
        callMs.push(performance.now() - t);
      }
    }),
  );
  return { perSecond: moved / ((Date.now() - start) / 1000), callMs };
}

/** One raw hop: what the emulator moves on its own, on resources the bench made for it. */
export interface RawHop {
  readonly perSecond: number;
  /** What `perSecond` counts. */
  readonly unit: "records" | "messages" | "items";
  /** How it was driven. */
  readonly how: string;
  /** Whether every event's path through the pipeline takes this hop (then it can be the pipeline's limit). */
  readonly inPipeline: boolean;
  /** Time per call (p50, p99), under the same 4 lanes. */
  readonly callMs: { readonly p50: number; readonly p99: number };
  /** For SNS → SQS: from PublishBatch to the message being in the queue (its SentTimestamp). */
  readonly deliveryMs?: { readonly p50: number; readonly p99: number };
}

export type RawHops = Record<
  | "kinesisPutRecord"
  | "kinesisPutRecords"
  | "snsPublishBatchToSqsFifo"
  | "sqsFifoSendReceiveDelete"
  | "dynamodbConditionalPutItem"
  | "dynamodbBatchWriteItem",
  RawHop
>;

const ms = (values: readonly number[]) => ({
  p50: Math.round(percentile(values, 50) * 10) / 10,
  p99: Math.round(percentile(values, 99) * 10) / 10,
});

/**
 * The raw throughput of each emulator hop, measured on a stream, topic, queues and tables of the
 * bench's own (made here and deleted after: the app's resources never see a raw record), driven
 * by 4 lanes for `seconds` each with the pipeline's batch sizes.
 */
export async function measureRawHops(
  aws: BenchAws,
  prefix: string,
  shards: number,
  seconds: number,
  log: (line: string) => void = () => {},
): Promise<RawHops> {
  const lanes = 4;
  const body = "x".repeat(600);
  const tag = `${prefix}-bench-raw-${process.pid}`;
  const streamName = tag;
  const tableName = tag;
  const cleanups: (() => Promise<unknown>)[] = [];
  let n = 0;
  try {
    await aws.kinesis.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: shards }));
    cleanups.push(() =>
      aws.kinesis.send(new DeleteStreamCommand({ StreamName: streamName, EnforceConsumerDeletion: true })),
    );
    for (let i = 0; i < 300; i++) {
      const d = await aws.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
      if (d.StreamDescriptionSummary?.StreamStatus === "ACTIVE") break;
      await sleep(100);
    }
    log(`bench:   Kinesis PutRecord on ${streamName} (${shards} shards) …`);
    const putRecord = await throughput(seconds, lanes, async () => {
      await aws.kinesis.send(
        new PutRecordCommand({ StreamName: streamName, PartitionKey: `raw-${n++}`, Data: Buffer.from(body) }),
      );
      return 1;
    });
    log("bench:   Kinesis PutRecords …");
    const putRecords = await throughput(seconds, lanes, async () => {
      await aws.kinesis.send(
        new PutRecordsCommand({
          StreamName: streamName,
          Records: Array.from({ length: 100 }, () => ({ PartitionKey: `raw-${n++}`, Data: Buffer.from(body) })),
        }),
      );
      return 100;
    });

    log("bench:   SNS PublishBatch → SQS FIFO …");
    const topic = await aws.sns.send(
      new CreateTopicCommand({
        Name: `${tag}.fifo`,
        Attributes: { FifoTopic: "true", ContentBasedDeduplication: "false" },
      }),
    );
    const topicArn = topic.TopicArn as string;
    cleanups.push(() => aws.sns.send(new DeleteTopicCommand({ TopicArn: topicArn })));
    const subscriber = await createFifoQueue(aws, `${tag}-sub.fifo`, cleanups);
    await aws.sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: "sqs",
        Endpoint: subscriber.arn,
        Attributes: { RawMessageDelivery: "true" },
      }),
    );
    const snsToSqs = await publishToQueue(aws, topicArn, subscriber.url, seconds, lanes, body);

    log("bench:   SQS FIFO send/receive/delete …");
    const queue = await createFifoQueue(aws, `${tag}.fifo`, cleanups);
    const sqs = await throughput(seconds, lanes, async () => {
      await aws.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: Array.from({ length: 10 }, (_, i) => ({
            Id: String(i),
            MessageBody: body,
            MessageGroupId: `g-${n % 50}-${i}`,
            MessageDeduplicationId: `d-${n++}`,
          })),
        }),
      );
      const received = await aws.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      const messages = received.Messages ?? [];
      if (messages.length > 0) {
        await aws.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queue.url,
            Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
      }
      return messages.length;
    });

    log("bench:   DynamoDB conditional PutItem and BatchWriteItem …");
    await createTableIfMissing(tableName);
    cleanups.push(() => aws.dynamo.send(new DeleteTableCommand({ TableName: tableName })));
    const item = (id: string) => ({ id, accountId: id, owner: "bench", balanceCents: 1, version: 1 });
    const conditionalPut = await throughput(seconds, lanes, async () => {
      await aws.dynamo.send(
        new PutCommand({
          TableName: tableName,
          Item: item(`p-${n++}`),
          ConditionExpression: "attribute_not_exists(id)",
        }),
      );
      return 1;
    });
    const batchWrite = await throughput(seconds, lanes, async () => {
      let requests = Array.from({ length: 25 }, () => ({ PutRequest: { Item: item(`b-${n++}`) } }));
      while (requests.length > 0) {
        const result = await aws.dynamo.send(new BatchWriteCommand({ RequestItems: { [tableName]: requests } }));
        requests = (result.UnprocessedItems?.[tableName] ?? []) as typeof requests;
      }
      return 25;
    });

    const hop = (
      measured: { perSecond: number; callMs: number[] },
      unit: RawHop["unit"],
      how: string,
      inPipeline: boolean,
    ): RawHop => ({ perSecond: measured.perSecond, unit, how, inPipeline, callMs: ms(measured.callMs) });
    return {
      kinesisPutRecord: hop(
        putRecord,
        "records",
        "PutRecord, 1 record a call (no hop appends one at a time now)",
        false,
      ),
      kinesisPutRecords: hop(
        putRecords,
        "records",
        "PutRecords, 100 records a call (the command handler appends a batch's commits in one call, up to 10)",
        true,
      ),
      snsPublishBatchToSqsFifo: {
        ...hop(
          snsToSqs,
          "messages",
          "PublishBatch of 10 to a FIFO topic, received from its FIFO queue (the relay's fan-out)",
          true,
        ),
        deliveryMs: ms(snsToSqs.deliveryMs),
      },
      sqsFifoSendReceiveDelete: hop(
        sqs,
        "messages",
        "SendMessageBatch 10 + ReceiveMessage 10 + DeleteMessageBatch",
        true,
      ),
      dynamodbConditionalPutItem: hop(
        conditionalPut,
        "items",
        "PutItem with attribute_not_exists (the API's record, projections' writes)",
        true,
      ),
      dynamodbBatchWriteItem: hop(batchWrite, "items", "BatchWriteItem, 25 items a call (replay's writes)", false),
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
}

async function createFifoQueue(
  aws: BenchAws,
  name: string,
  cleanups: (() => Promise<unknown>)[],
): Promise<{ url: string; arn: string }> {
  const created = await aws.sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: "true", ContentBasedDeduplication: "false" } }),
  );
  const url = created.QueueUrl as string;
  cleanups.push(() => aws.sqs.send(new DeleteQueueCommand({ QueueUrl: url })));
  const attributes = await aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
  return { url, arn: attributes.Attributes?.QueueArn as string };
}

/**
 * SNS → SQS: `lanes` publishers of PublishBatch (10) for `seconds`, two consumers receiving and
 * deleting from the subscribed queue until everything published arrived (at most 5 s more).
 * Messages/s counts what reached the consumers.
 */
async function publishToQueue(
  aws: BenchAws,
  topicArn: string,
  queueUrl: string,
  seconds: number,
  lanes: number,
  body: string,
): Promise<{ perSecond: number; callMs: number[]; deliveryMs: number[] }> {
  let published = 0;
  let received = 0;
  let n = 0;
  let publishing = true;
  const deliveryMs: number[] = [];
  const start = Date.now();
  let last = start;
  const consumers = Array.from({ length: 2 }, async () => {
    const finished = () => !publishing && (received >= published || Date.now() > start + (seconds + 5) * 1000);
    while (!finished()) {
      const got = await aws.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ["SentTimestamp"],
        }),
      );
      const messages = got.Messages ?? [];
      if (messages.length === 0) continue;
      for (const m of messages) {
        const publishedAt = Number(/^(\d+)/.exec(m.Body ?? "")?.[1]);
        const sentAt = Number(m.Attributes?.SentTimestamp);
        if (Number.isFinite(publishedAt) && Number.isFinite(sentAt)) deliveryMs.push(sentAt - publishedAt);
      }
      received += messages.length;
      last = Date.now();
      await aws.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
  });
  const publish = await throughput(seconds, lanes, async () => {
    const at = Date.now();
    await aws.sns.send(
      new PublishBatchCommand({
        TopicArn: topicArn,
        PublishBatchRequestEntries: Array.from({ length: 10 }, (_, i) => ({
          Id: String(i),
          Message: `${at} ${body}`,
          MessageGroupId: `raw-${(n + i) % 50}`,
          MessageDeduplicationId: `raw-${n++}`,
        })),
      }),
    );
    published += 10;
    return 10;
  });
  publishing = false;
  await Promise.all(consumers);
  return { perSecond: received / ((last - start) / 1000 || 1), callMs: publish.callMs, deliveryMs };
}

/** Raw BatchWriteItem: `items` items of about the size of a balance, 25 a call, `lanes` at once; items/s. */
export async function measureRawBatchWrite(table: string, items: number, lanes: number): Promise<number> {
  const start = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < items) {
        const from = next;
        next += 25;
        let requests = Array.from({ length: Math.min(25, items - from) }, (_, i) => ({
          PutRequest: {
            Item: { id: `raw-${from + i}`, accountId: `raw-${from + i}`, owner: "bench", balanceCents: i, version: 1 },
          },
        }));
        while (requests.length > 0) {
          const result = await dynamoClient().send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
          requests = (result.UnprocessedItems?.[table] ?? []) as typeof requests;
        }
      }
    }),
  );
  return items / ((Date.now() - start) / 1000);
}

export { type BundleFigure, type BundleMeasurement, measureBundles } from "./bundles.ts";

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
