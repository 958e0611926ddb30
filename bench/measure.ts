/**
 * The benchmark's measurements that need no running pipeline, or only its emulators: the
 * engine in process, raw emulator hops, raw BatchWriteItem, replay, and Lambda bundles.
 * Each returns numbers; bench/run.ts pairs them into figures with their limits.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PutRecordCommand } from "@aws-sdk/client-kinesis";
import { PublishBatchCommand } from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from "@aws-sdk/client-sqs";
import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { build } from "esbuild";
import { type BalanceItem, evolveBalance } from "../functions/accounts/balances-projection.ts";
import type { AccountEvent } from "../functions/accounts/decider.ts";
import { dynamoClient, kinesisClient, snsClient, sqsClient } from "../shared/aws/clients.ts";
import { arbitrateRun } from "../shared/events/arbitrate.ts";
import { buildCommit, type Commit, parseCommit } from "../shared/events/envelope.ts";
import type { AppPlan } from "../shared/plan.ts";

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

/** Engine: decode (schema-checked) + arbitrate + evolve, events/s, vs raw JSON.parse of the same bytes. */
export function measureEngine(events: number, seconds: number): { eventsPerSecond: number; rawParsePerSecond: number } {
  const bytes = sampleCommits(events, Math.max(1, Math.floor(events / 20)));
  const engine = rate(seconds, () => {
    const commits: Commit[] = bytes.map((b) => parseCommit(b));
    const { verdicts } = arbitrateRun(new Map(), commits);
    const balances = new Map<string, BalanceItem>();
    verdicts.forEach((verdict, i) => {
      if (verdict.verdict !== "accepted") return;
      for (const e of (commits[i] as Commit).events) {
        const event = { type: e.type, data: e.data } as AccountEvent;
        balances.set(e.subject, evolveBalance(balances.get(e.subject), event, e.aggregateversion));
      }
    });
  });
  const raw = rate(seconds, () => {
    for (const b of bytes) JSON.parse(b.toString());
  });
  return { eventsPerSecond: engine * events, rawParsePerSecond: raw * events };
}

/** Runs `lanes` loops of `call` (each moving `per` messages) for `seconds`; returns messages/s. */
async function throughput(seconds: number, lanes: number, per: number, call: () => Promise<number>): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let moved = 0;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (Date.now() < end) moved += await call();
    }),
  );
  return moved / ((Date.now() - start) / 1000) || per * 0;
}

export interface RawHops {
  /** Messages/s each hop moves on its own, batched as the pipeline batches. */
  readonly kinesisPutRecord: number;
  readonly snsPublishBatch: number;
  readonly sqsFifoSendReceiveDelete: number;
}

/** The raw throughput of each emulator hop on the same endpoints, with the pipeline's batch sizes. */
export async function measureRawHops(
  plan: AppPlan,
  streamName: string,
  topicArn: string,
  seconds: number,
): Promise<RawHops> {
  const lanes = 4;
  const body = "x".repeat(600);
  const kinesisPutRecord = await throughput(seconds, lanes, 1, async () => {
    await kinesisClient().send(
      new PutRecordCommand({ StreamName: streamName, PartitionKey: `raw-${Math.random()}`, Data: Buffer.from(body) }),
    );
    return 1;
  });
  // SNS: publish to the bus topic with a type no queue subscribes to (nothing fans out).
  let n = 0;
  const snsPublishBatch = await throughput(seconds, lanes, 10, async () => {
    await snsClient().send(
      new PublishBatchCommand({
        TopicArn: topicArn,
        PublishBatchRequestEntries: Array.from({ length: 10 }, (_, i) => ({
          Id: String(i),
          Message: body,
          MessageGroupId: `raw-${i}`,
          MessageDeduplicationId: `raw-${n++}`,
          MessageAttributes: { type: { DataType: "String", StringValue: "RawBenchNobodyListens" } },
        })),
      }),
    );
    return 10;
  });
  const queue = await sqsClient().send(
    new CreateQueueCommand({
      QueueName: `${plan.prefix}-bench-raw.fifo`,
      Attributes: { FifoQueue: "true", ContentBasedDeduplication: "false" },
    }),
  );
  const url = queue.QueueUrl as string;
  const sqsFifoSendReceiveDelete = await throughput(seconds, lanes, 10, async () => {
    await sqsClient().send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: Array.from({ length: 10 }, (_, i) => ({
          Id: String(i),
          MessageBody: body,
          MessageGroupId: `g-${n % 50}-${i}`,
          MessageDeduplicationId: `d-${n++}`,
        })),
      }),
    );
    const received = await sqsClient().send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    const messages = received.Messages ?? [];
    if (messages.length > 0) {
      await sqsClient().send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
    return messages.length;
  });
  return { kinesisPutRecord, snsPublishBatch, sqsFifoSendReceiveDelete };
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

export interface BundleFigure {
  readonly function: string;
  readonly handler: string;
  readonly bytes: number;
  readonly initMs: number | undefined;
  readonly error?: string;
}

/** Bundles each planned handler as CDK does (esbuild, ESM, node, @aws-sdk/* external, minified); sizes and init times. */
export async function measureBundles(
  plan: AppPlan,
  repoRoot: string,
  runs: number,
): Promise<{ bundles: BundleFigure[]; emptyInitMs: number }> {
  const outdir = join(repoRoot, "node_modules", ".cache", "canon-bench");
  mkdirSync(outdir, { recursive: true });
  const empty = join(outdir, "empty.mjs");
  writeFileSync(empty, "export const handler = async () => {};\n");
  const emptyInitMs = median(Array.from({ length: runs }, () => initTime(empty, repoRoot)));
  const seen = new Map<string, string>();
  for (const fn of plan.functions) if (!seen.has(fn.handler)) seen.set(fn.handler, fn.id);
  const bundles: BundleFigure[] = [];
  for (const [handler, id] of seen) {
    const outfile = join(outdir, `${id}.mjs`);
    await build({
      entryPoints: [join(repoRoot, handler)],
      outfile,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node24",
      mainFields: ["module", "main"],
      external: ["@aws-sdk/*"],
      minify: true,
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
      logLevel: "silent",
    });
    const bytes = statSync(outfile).size;
    try {
      const initMs = median(Array.from({ length: runs }, () => initTime(outfile, repoRoot)));
      bundles.push({ function: id, handler, bytes, initMs });
    } catch (error) {
      bundles.push({ function: id, handler, bytes, initMs: undefined, error: String(error).slice(0, 200) });
    }
  }
  return { bundles, emptyInitMs };
}

/** Milliseconds to import a module in a fresh Node 24 process (this process's binary). */
function initTime(file: string, cwd: string): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(`file://${file}`)}); process.stdout.write(String(performance.now() - t));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd,
    env: { PATH: process.env.PATH ?? "", AWS_REGION: "us-east-1" },
    encoding: "utf8",
    timeout: 30_000,
  });
  return Number(out);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
