/**
 * `node bench/kinesis-emulators.ts [--records 20000] [--emulators kinesalite,kinesis-mock]`: the
 * local Kinesis emulators side by side, as the embedded cloud runs them (persisting to a data
 * folder) and through the SDK v3 KinesisClient exactly as shared/aws/clients.ts builds it.
 *
 * Per emulator, on a loopback port and a fresh folder, one stream of one shard, 600-byte records:
 * PutRecord latency (p50, p99 of 200 in a row) when empty and after 5,000 and `--records` records,
 * PutRecords throughput while filling (500 a call), PutRecord throughput from 8 concurrent callers,
 * GetRecords of the whole shard (1,000 a call), then a SIGKILL while 8 callers put records, a
 * restart on the same folder, and how many acknowledged records it still holds. kinesalite runs
 * through shared/local-cloud/emulator-host.ts (what `canon dev` starts); kinesis-mock, the emulator
 * before it, with the settings the host gave it (persisting every 250 ms) when its package is there
 * (`npm install --no-save kinesis-local@0.6.2`; it is no longer a dependency). Prints a Markdown
 * table (docs/local-cloud.md has one run). The machine's other load shows in the figures. A fill
 * step gives up after 240 s, and the table says at how many records it stopped.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";
import { kinesisClient } from "../shared/aws/clients.ts";
import { isAwsError } from "../shared/aws/errors.ts";
import { freePort } from "../shared/local-cloud/ports.ts";

const require = createRequire(import.meta.url);
const hostScript = resolve(import.meta.dirname, "../shared/local-cloud/emulator-host.ts");
const streamName = "bench";
const payload = Buffer.alloc(600, "x");

type Emulator = "kinesalite" | "kinesis-mock";

interface Figures {
  readonly emulator: Emulator;
  readonly readyMs: number;
  /** Records in the stream before each PutRecord measurement. */
  readonly putAt: readonly number[];
  readonly putP50: readonly number[];
  readonly putP99: readonly number[];
  readonly putRecordsPerSecond: number;
  readonly concurrentPutsPerSecond: number;
  readonly getRecordsPerSecond: number;
  readonly getP50: number;
  readonly filled: number;
  readonly restartMs: number;
  readonly acknowledged: number;
  readonly lost: number;
  readonly note?: string;
}

/** Emulator processes still running: killed if this script is stopped (kinesis-mock ignores its pipe). */
const live = new Set<ChildProcess>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    for (const child of live) child.kill("SIGKILL");
    process.exit(130);
  });
}

/** Starts one emulator on `port` with its data in `dir`; resolves when it serves. */
async function launch(emulator: Emulator, port: number, dir: string): Promise<ChildProcess> {
  let child: ChildProcess;
  if (emulator === "kinesalite") {
    child = spawn(process.execPath, [hostScript, "kinesis", String(port), dir], { stdio: ["pipe", "pipe", "pipe"] });
  } else {
    const main = require.resolve("kinesis-local/main.js");
    child = spawn(process.execPath, [main], {
      cwd: dirname(main),
      stdio: ["pipe", "pipe", "pipe"],
      env: {
        ...process.env,
        KINESIS_MOCK_PLAIN_PORT: String(port),
        KINESIS_MOCK_TLS_PORT: String(await freePort()),
        SHOULD_PERSIST_DATA: "true",
        LOAD_DATA_IF_EXISTS: "true",
        PERSIST_PATH: dir,
        PERSIST_INTERVAL: "250ms",
        CREATE_STREAM_DURATION: "0ms",
        LOG_LEVEL: "WARN",
        AWS_ACCOUNT_ID: "000000000000",
      },
    });
  }
  live.add(child);
  child.once("exit", () => live.delete(child));
  const stderr: string[] = [];
  child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  child.stdout?.resume();
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${emulator} exited: ${stderr.join("")}`);
    if (await serves(port)) return child;
    await sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error(`${emulator} did not serve within 120 s: ${stderr.join("")}`);
}

async function serves(port: number): Promise<boolean> {
  const open = await new Promise<boolean>((done) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.end();
      done(true);
    });
    socket.once("error", () => done(false));
  });
  if (!open) return false;
  try {
    await kinesisClient().send(new ListShardsCommand({ StreamName: "none-such" }));
    return true;
  } catch (error) {
    return isAwsError(error, "ResourceNotFoundException");
  }
}

function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once("exit", () => done());
    child.kill("SIGKILL");
  });
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function timedPuts(count: number): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await kinesisClient().send(new PutRecordCommand({ StreamName: streamName, PartitionKey: `p${i}`, Data: payload }));
    times.push(performance.now() - t);
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** Fills with PutRecords from `from` to `total` records (or until `budgetMs` ran out). */
async function fill(from: number, total: number, budgetMs: number): Promise<{ added: number; seconds: number }> {
  const start = performance.now();
  let n = from;
  while (n < total && performance.now() - start < budgetMs) {
    const size = Math.min(500, total - n);
    const result = await kinesisClient().send(
      new PutRecordsCommand({
        StreamName: streamName,
        Records: Array.from({ length: size }, (_, i) => ({ PartitionKey: `f${n + i}`, Data: payload })),
      }),
    );
    n += size - (result.FailedRecordCount ?? 0);
  }
  return { added: n - from, seconds: (performance.now() - start) / 1000 };
}

/** `callers` concurrent PutRecord loops for `ms`; returns the sequence numbers acknowledged. */
async function concurrentPuts(callers: number, ms: number, stopEarly?: Promise<void>): Promise<string[]> {
  const acknowledged: string[] = [];
  let stopped = false;
  void stopEarly?.then(() => {
    stopped = true;
  });
  const end = Date.now() + ms;
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      for (let i = 0; Date.now() < end && !stopped; i++) {
        try {
          const put = await kinesisClient().send(
            new PutRecordCommand({ StreamName: streamName, PartitionKey: `c${c}-${i}`, Data: payload }),
          );
          if (!stopped) acknowledged.push(put.SequenceNumber ?? "");
        } catch {
          return; // the emulator was killed
        }
      }
    }),
  );
  return acknowledged;
}

/** Every sequence number in the shard, and GetRecords timings (1,000 a call). */
async function readAll(shardId: string): Promise<{ sequenceNumbers: Set<string>; rate: number; p50: number }> {
  const sequenceNumbers = new Set<string>();
  const times: number[] = [];
  const start = performance.now();
  let iterator = (
    await kinesisClient().send(
      new GetShardIteratorCommand({ StreamName: streamName, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }),
    )
  ).ShardIterator;
  for (let empty = 0; iterator !== undefined && empty < 3; ) {
    const t = performance.now();
    const page = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1_000 }));
    times.push(performance.now() - t);
    for (const record of page.Records ?? []) sequenceNumbers.add(record.SequenceNumber ?? "");
    empty = (page.Records ?? []).length === 0 ? empty + 1 : 0;
    iterator = page.NextShardIterator;
  }
  return {
    sequenceNumbers,
    rate: sequenceNumbers.size / ((performance.now() - start) / 1000),
    p50: percentile(times, 50),
  };
}

async function measure(emulator: Emulator, records: number): Promise<Figures> {
  const began = performance.now();
  const progress = (line: string) =>
    console.error(`${emulator} +${((performance.now() - began) / 1000).toFixed(0)}s: ${line}`);
  const dir = mkdtempSync(join(tmpdir(), `canon-bench-${emulator}-`));
  const port = await freePort();
  process.env.AWS_ENDPOINT_URL_KINESIS = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  try {
    let t = performance.now();
    child = await launch(emulator, port, dir);
    const readyMs = performance.now() - t;
    await kinesisClient().send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 1 }));
    for (let i = 0; i < 200; i++) {
      const summary = await kinesisClient().send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
      if (summary.StreamDescriptionSummary?.StreamStatus === "ACTIVE") break;
      await sleep(50);
    }
    const shardId = (await kinesisClient().send(new ListShardsCommand({ StreamName: streamName }))).Shards?.[0]
      ?.ShardId as string;
    const putAt: number[] = [];
    const putP50: number[] = [];
    const putP99: number[] = [];
    const record = async () => {
      putAt.push(count);
      const { p50, p99 } = await timedPuts(200);
      putP50.push(p50);
      putP99.push(p99);
      progress(`PutRecord p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
    };
    let count = 0;
    let filling = { added: 0, seconds: 0 };
    await record();
    count += 200;
    for (const target of [5_000, records]) {
      const step = await fill(count, target, 240_000);
      filling = { added: filling.added + step.added, seconds: filling.seconds + step.seconds };
      count += step.added;
      progress(`${count} records; PutRecords ${Math.round(step.added / step.seconds)}/s`);
      await record();
      count += 200;
    }
    const filled = count;
    const putRecordsPerSecond = filling.added / filling.seconds;
    t = performance.now();
    const concurrent = await concurrentPuts(8, 3_000);
    const concurrentPutsPerSecond = concurrent.length / ((performance.now() - t) / 1000);
    progress(`PutRecord ×8: ${Math.round(concurrentPutsPerSecond)}/s`);
    const read = await readAll(shardId);
    progress(`GetRecords ${Math.round(read.rate)}/s, p50 ${read.p50.toFixed(1)} ms`);

    // Durability: kill -9 while 8 callers put, restart on the same folder, count what survived.
    let kill = () => {};
    const killed = new Promise<void>((done) => {
      kill = done;
    });
    const running = child;
    const putting = concurrentPuts(8, 10_000, killed);
    await sleep(1_500);
    kill();
    await killHard(running);
    const acknowledged = await putting;
    t = performance.now();
    child = await launch(emulator, port, dir);
    const restartMs = performance.now() - t;
    const after = await readAll(shardId);
    const lostBefore = [...read.sequenceNumbers].filter((s) => !after.sequenceNumbers.has(s)).length;
    const lost = acknowledged.filter((s) => !after.sequenceNumbers.has(s)).length + lostBefore;
    return {
      emulator,
      readyMs,
      putAt,
      putP50,
      putP99,
      putRecordsPerSecond,
      concurrentPutsPerSecond,
      getRecordsPerSecond: read.rate,
      getP50: read.p50,
      filled,
      restartMs,
      acknowledged: acknowledged.length + read.sequenceNumbers.size,
      lost,
    };
  } finally {
    if (child) await killHard(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

function installed(emulator: Emulator): boolean {
  try {
    require.resolve(emulator === "kinesalite" ? "kinesalite" : "kinesis-local/main.js");
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      records: { type: "string", default: "20000" },
      emulators: { type: "string", default: "kinesalite,kinesis-mock" },
    },
  });
  const records = Number(values.records);
  if (!Number.isInteger(records) || records < 5_400 || records > 200_000) {
    throw new Error("--records must be an integer from 5400 to 200000");
  }
  Object.assign(process.env, { AWS_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" });
  const results: Figures[] = [];
  for (const emulator of values.emulators.split(",") as Emulator[]) {
    if (!installed(emulator)) {
      console.log(`${emulator}: not installed, skipped`);
      continue;
    }
    console.log(`${emulator}: measuring …`);
    const figures = await measure(emulator, records);
    console.log(JSON.stringify(figures));
    results.push(figures);
  }
  const ms = (n: number | undefined) => (n === undefined ? "–" : `${n.toFixed(1)} ms`);
  const rate = (n: number) => `${Math.round(n).toLocaleString("en")}/s`;
  console.log(
    `\n| emulator | PutRecord p50 (p99) at 0 | after 5,000 | after ${records.toLocaleString("en")} | PutRecords | PutRecord ×8 | GetRecords (p50 of 1,000) | kill -9 under load, restart | acknowledged records lost |`,
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const f of results) {
    const put = (i: number) => {
      const at = f.putAt[i] ?? 0;
      const note =
        i > 0 && at < (i === 1 ? 5_000 : records) ? ` at ${at.toLocaleString("en")} (the fill ran out of time)` : "";
      return `${ms(f.putP50[i])} (${ms(f.putP99[i])})${note}`;
    };
    console.log(
      `| ${f.emulator} | ${put(0)} | ${put(1)} | ${put(2)} | ${rate(f.putRecordsPerSecond)} | ${rate(f.concurrentPutsPerSecond)} | ${rate(f.getRecordsPerSecond)} (${ms(f.getP50)}) | serves again in ${ms(f.restartMs)} | ${f.lost} of ${f.acknowledged.toLocaleString("en")} |`,
    );
  }
}

if (import.meta.main) await main();
