/**
 * `npm run bench [-- options]` (`--help` lists them): Canon's figures, each with its ratio to a
 * limit measured in the same run on the same machine. Prints them; a full run (no `--only`)
 * writes bench/results.json and docs/performance.md.
 *
 * Sections (`--only a,b` runs some of them; a section that needs the raw hops as its limit brings them):
 * - engine: decode + arbitrate + evolve, events/s in process, vs raw JSON.parse of the same bytes;
 * - bundles: bundle size and module init time per function, vs an empty module's init;
 * - hops: the raw throughput of each emulator hop, on a stream, topic, queues and table of the
 *   bench's own (never the app's): the pipeline's limit is the slowest hop every event takes;
 * - pipeline: closed-loop clients through the API, commands/s and command → view latency, with the
 *   AWS calls per event at each hop and each function's Lambda time (billed duration) per event;
 * - breakdown: a few traced commands, split hop by hop from the timestamps the system keeps;
 * - scaling: closed loops of 1, 4, 32, 128 clients over 64 accounts;
 * - open-loop: arrivals at a fixed rate whatever the answers, latency from each scheduled send;
 * - hot: many clients on one account;
 * - replay: a generated archive (--events over --aggregates) replayed into a fresh balances table,
 *   events/s vs raw BatchWriteItem on the same emulator, peak RSS, a kill -9 and resume;
 * - handover: the same archive added to the running system's, a warm-up under live traffic, its
 *   view checked item by item (no gap, no double apply);
 * and from the pipeline's counts: cost, dollars per million events (bench/prices.json).
 */

import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, freemem, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { app } from "../functions/app.ts";
import { archivePassed } from "../shared/archive/watermark.ts";
import { type CallCounts, countCallsEnv } from "../shared/aws/call-counter.ts";
import { contractsOf } from "../shared/domain/commands.ts";
import { type DevSystem, startDev } from "../shared/local-cloud/dev.ts";
import { envNames, planApp } from "../shared/plan.ts";
import { type BenchAws, benchAws } from "./aws.ts";
import { type BundleInput, bundleTargets, kibTargetFor } from "./bundles.ts";
import { type CpuPerCommand, cpuPerCommand, cpuPerSecond, cpuSnapshot } from "./cpu.ts";
import { type HandoverFigures, measureHandoverAtScale } from "./handover.ts";
import { diffLambdaTimes, type LambdaTimes, lambdaTimesEnv, readLambdaTimes, writeShadowRoot } from "./lambda-time.ts";
import {
  type CommandRecord,
  closedLoop,
  ensureOpen,
  type LoadContext,
  type OpenLoopStats,
  openLoop,
  type RunStats,
  Tracker,
} from "./load.ts";
import {
  type EngineFigures,
  engineTargetRatio,
  measureBundles,
  measureEngine,
  measureRawHops,
  type RawHops,
} from "./measure.ts";
import prices from "./prices.json" with { type: "json" };
import { measureReplayAtScale, type ReplayScaleFigures } from "./replay-scale.ts";
import {
  type EmitCostFigures,
  measureEmitCost,
  measureTelemetryCost,
  type TelemetryCostFigures,
} from "./telemetry-cost.ts";
import {
  collectRecorded,
  HopProbe,
  type HopTrace,
  type Recorded,
  runSegments,
  type Segment,
  subscribersOf,
  traceSegments,
} from "./trace.ts";

const repoRoot = resolve(import.meta.dirname, "..");

const sections = [
  "engine",
  "bundles",
  "hops",
  "pipeline",
  "breakdown",
  "scaling",
  "open-loop",
  "hot",
  "telemetry",
  "replay",
  "handover",
] as const;
type Section = (typeof sections)[number];
/** Seconds the system is watched doing nothing, for its idle CPU. */
const idleSeconds = 5;
/** Sections whose figures are printed beside the pipeline's limit (the slowest raw hop). */
const needHops: readonly Section[] = ["pipeline", "breakdown", "scaling", "open-loop", "hot"];

interface Options {
  readonly seconds: number;
  readonly clients: number;
  readonly accounts: number;
  readonly engineEvents: number;
  readonly replayEvents: number;
  readonly replayAggregates: number;
  readonly rawSeconds: number;
  readonly initRuns: number;
  readonly costRate: number;
  readonly scalingClients: readonly number[];
  readonly scalingAccounts: number;
  readonly stepSeconds: number;
  readonly drainSeconds: number;
  readonly rate: number;
  readonly arrivals: "poisson" | "even";
  readonly seed: number;
  readonly maxInFlight: number;
  readonly hotClients: number;
  readonly breakdownClients: number;
  readonly breakdownSeconds: number;
  readonly breakdownPollMs: number;
  readonly pollMs: number;
  readonly only: readonly Section[];
  readonly out: string | undefined;
}

const usage = `usage: npm run bench -- [options]

  --only <sections>         run only these (comma-separated): ${sections.join(", ")}
                            (a section measured against the pipeline's limit brings "hops";
                            bench/results.json and docs/performance.md are written by full runs only)
  --seconds <n>             pipeline: seconds of closed-loop load (default 15)
  --clients <n>             pipeline: closed-loop clients (default 8)
  --accounts <n>            pipeline: accounts they deposit into (default 32)
  --scaling-clients <list>  scaling: clients per step (default 1,4,32,128)
  --scaling-accounts <n>    scaling and open loop: accounts (default 64)
  --step-seconds <n>        seconds of load per scaling step, open loop and hot run (default 6)
  --drain-seconds <n>       after each run, time for in-flight commands to finish; what is still
                            unfinished is counted, not waited for (default 8)
  --rate <n>                open loop: offered commands/s (default 100)
  --arrivals <kind>         open loop: poisson or even (default poisson)
  --seed <n>                open loop: the arrivals' seed (default 1)
  --max-in-flight <n>       open loop: arrivals beyond this many in flight are shed, and counted (default 128)
  --hot-clients <n>         hot: closed-loop clients on one account (default 8)
  --breakdown-clients <n>   breakdown: closed-loop clients whose commands are traced (default 4)
  --breakdown-seconds <n>   breakdown: seconds of traced load (default 6)
  --breakdown-poll-ms <n>   breakdown: how often the subscribers' tables are polled (default 25)
  --poll-ms <n>             how often the bench looks at the views and outcomes (default 50)
  --engine-events <n>       engine: events per round (default 2000)
  --events <n>              replay: events in the generated archive (default 1000000)
  --aggregates <n>          replay: accounts they are spread over (default 10000); handover too
  --raw-seconds <n>         hops: seconds per raw hop (default 3)
  --init-runs <n>           bundles: imports timed per bundle (default 3)
  --cost-rate <n>           cost: events/s the cost model assumes (default 100)
  --out <file>              also write the results (JSON) to this file, whatever ran
  --help                    this text`;

/** A bad command line: printed with the usage, exit code 2. */
class UsageError extends Error {}

function parseOptions(argv: readonly string[]): Options {
  try {
    return readOptions(argv);
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/^bench: /, ""));
  }
}

function readOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      help: { type: "boolean", default: false },
      only: { type: "string" },
      out: { type: "string" },
      seconds: { type: "string", default: "15" },
      clients: { type: "string", default: "8" },
      accounts: { type: "string", default: "32" },
      "scaling-clients": { type: "string", default: "1,4,32,128" },
      "scaling-accounts": { type: "string", default: "64" },
      "step-seconds": { type: "string", default: "6" },
      "drain-seconds": { type: "string", default: "8" },
      rate: { type: "string", default: "100" },
      arrivals: { type: "string", default: "poisson" },
      seed: { type: "string", default: "1" },
      "max-in-flight": { type: "string", default: "128" },
      "hot-clients": { type: "string", default: "8" },
      "breakdown-clients": { type: "string", default: "4" },
      "breakdown-seconds": { type: "string", default: "6" },
      "breakdown-poll-ms": { type: "string", default: "25" },
      "poll-ms": { type: "string", default: "50" },
      "engine-events": { type: "string", default: "2000" },
      events: { type: "string", default: "1000000" },
      aggregates: { type: "string", default: "10000" },
      "raw-seconds": { type: "string", default: "3" },
      "init-runs": { type: "string", default: "3" },
      "cost-rate": { type: "string", default: "100" },
    },
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const number = (flag: string, integer: boolean) => {
    const raw = values[flag as keyof typeof values] as string;
    const n = Number(raw);
    if (!(Number.isFinite(n) && n > 0 && (!integer || Number.isInteger(n)))) {
      throw new Error(`bench: --${flag} must be a positive ${integer ? "integer" : "number"}, not "${raw}"`);
    }
    return n;
  };
  const scalingClients = String(values["scaling-clients"])
    .split(",")
    .map((c) => Number(c.trim()));
  if (scalingClients.length === 0 || !scalingClients.every((c) => Number.isInteger(c) && c > 0)) {
    throw new Error(`bench: --scaling-clients must be positive integers separated by commas`);
  }
  if (values.arrivals !== "poisson" && values.arrivals !== "even") {
    throw new Error(`bench: --arrivals must be poisson or even, not "${values.arrivals}"`);
  }
  const only = values.only === undefined ? [...sections] : values.only.split(",").map((s) => s.trim());
  const unknown = only.filter((s) => !(sections as readonly string[]).includes(s));
  if (unknown.length > 0 || only.length === 0) {
    throw new Error(`bench: --only takes ${sections.join(", ")}; not ${unknown.join(", ") || "nothing"}`);
  }
  const chosen = new Set(only as Section[]);
  if ([...chosen].some((s) => needHops.includes(s))) chosen.add("hops");
  const clients = number("clients", true);
  return {
    seconds: number("seconds", false),
    clients,
    accounts: Math.max(number("accounts", true), clients),
    engineEvents: number("engine-events", true),
    replayEvents: number("events", true),
    replayAggregates: number("aggregates", true),
    rawSeconds: number("raw-seconds", false),
    initRuns: number("init-runs", true),
    costRate: number("cost-rate", false),
    scalingClients,
    scalingAccounts: number("scaling-accounts", true),
    stepSeconds: number("step-seconds", false),
    drainSeconds: number("drain-seconds", false),
    rate: number("rate", false),
    arrivals: values.arrivals,
    seed: number("seed", true),
    maxInFlight: number("max-in-flight", true),
    hotClients: number("hot-clients", true),
    breakdownClients: number("breakdown-clients", true),
    breakdownSeconds: number("breakdown-seconds", false),
    breakdownPollMs: number("breakdown-poll-ms", false),
    pollMs: number("poll-ms", false),
    only: sections.filter((s) => chosen.has(s)),
    out: values.out,
  };
}

/** Snapshot of every thread's call counts, by function (`main` is the API and this process). */
function readCounts(folder: string): Map<string, Record<string, number>> {
  const byWho = new Map<string, Record<string, number>>();
  let files: string[] = [];
  try {
    files = readdirSync(folder);
  } catch {
    return byWho;
  }
  for (const file of files) {
    // A file caught while its thread rewrites it does not parse: read it again. Skipping it would
    // drop its function from a before/after difference altogether.
    for (let attempt = 1; attempt <= 20; attempt++) {
      try {
        const { who, counts } = JSON.parse(readFileSync(join(folder, file), "utf8")) as CallCounts;
        const sum = byWho.get(who) ?? {};
        for (const [op, n] of Object.entries(counts)) sum[op] = (sum[op] ?? 0) + n;
        byWho.set(who, sum);
        break;
      } catch {
        // being written: a moment later it is whole
      }
    }
  }
  return byWho;
}

function diffCounts(after: Map<string, Record<string, number>>, before: Map<string, Record<string, number>>) {
  const out = new Map<string, Record<string, number>>();
  for (const [who, counts] of after) {
    const prior = before.get(who) ?? {};
    const delta: Record<string, number> = {};
    for (const [op, n] of Object.entries(counts)) if (n - (prior[op] ?? 0) > 0) delta[op] = n - (prior[op] ?? 0);
    if (Object.keys(delta).length > 0) out.set(who, delta);
  }
  return out;
}

/** AWS calls per accepted command (one event per deposit): in all, and by function. */
interface CallsPerEvent {
  readonly total: number;
  readonly byFunction: Record<string, number>;
}

function callsPerEvent(calls: ReadonlyMap<string, Record<string, number>>, events: number): CallsPerEvent {
  const per = (counts: Record<string, number>) =>
    events === 0 ? 0 : Object.values(counts).reduce((sum, n) => sum + n, 0) / events;
  const byFunction = Object.fromEntries(
    [...calls].sort(([a], [b]) => a.localeCompare(b)).map(([who, counts]) => [who, round(per(counts), 2)]),
  );
  return {
    total: round(
      [...calls.values()].reduce((sum, c) => sum + per(c), 0),
      2,
    ),
    byFunction,
  };
}

/** One line: CPU per command by part, and the commands/s the cores could carry at that CPU. */
function cpuLine(cpu: CpuPerCommand, per: "per command" | "per second idle" = "per command"): string {
  const top = Object.entries(cpu.byPartMs)
    .slice(0, 4)
    .map(([part, ms]) => `${part} ${ms}`);
  return per === "per command"
    ? `CPU per command: ${cpu.totalMs} ms (${top.join(", ")}, …) — ${cpu.cores} cores carry at most ${cpu.ceilingPerSecond}/s at this CPU`
    : `CPU per second idle: ${cpu.totalMs} ms (${top.join(", ")}, …) — ${round(cpu.totalMs / 1000, 2)} of ${cpu.cores} cores busy doing nothing`;
}

/** One line: calls per event in all, then the functions that make most of them. */
function callsLine(calls: ReadonlyMap<string, Record<string, number>>, events: number): string {
  const { total, byFunction } = callsPerEvent(calls, events);
  const top = Object.entries(byFunction)
    .filter(([, n]) => n >= 0.05)
    .sort(([, a], [, b]) => b - a)
    .map(([who, n]) => `${who === "main" ? "api" : who} ${n}`);
  return `AWS calls per event: ${total} (${top.join(", ")})`;
}

/** The most items one call of each operation can carry (single-item calls: one SQS batch of 10). */
const batchLimit: Record<string, number> = {
  "SQS.ReceiveMessage": 10,
  "SQS.DeleteMessageBatch": 10,
  "SQS.ChangeMessageVisibilityBatch": 10,
  "SQS.SendMessageBatch": 10,
  "SQS.SendMessage": 1,
  "SNS.PublishBatch": 10,
  "SNS.Publish": 1,
  "Kinesis.PutRecords": 500,
  "Kinesis.PutRecord": 1,
  "Kinesis.GetRecords": 100,
  "DynamoDB.BatchWriteItem": 25,
  "DynamoDB.BatchGetItem": 100,
  "S3.PutObject": 100,
};

/** The pipeline run: the closed loop, and what every function did meanwhile. */
interface Pipeline {
  readonly stats: RunStats;
  readonly calls: Map<string, Record<string, number>>;
  readonly times: Map<string, LambdaTimes>;
}

interface Breakdown {
  readonly stats: RunStats;
  readonly traces: HopTrace[];
  readonly subscribers: HopProbe["subscribers"];
  readonly skipped: { fn: string; reason: string }[];
  /** How often the subscribers' tables were really polled (ms). */
  readonly probeEveryMs: number;
}

function machine() {
  const cpuModel = (() => {
    try {
      return /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model;
    } catch {
      return cpus()[0]?.model;
    }
  })();
  const nproc = (() => {
    try {
      return Number(execFileSync("nproc", { encoding: "utf8" }).trim());
    } catch {
      return cpus().length;
    }
  })();
  return {
    nproc,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    freeMemoryGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
    cpu: cpuModel ?? "unknown",
    node: process.version,
    loadAverage: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
  };
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const run = (s: Section) => options.only.includes(s);
  const full = options.only.length === sections.length;
  const started = new Date();
  const log = (line: string) => console.log(line);
  log(`bench: ${JSON.stringify(options)}`);
  const measured: Measured = { options, started };

  if (run("engine")) {
    log("bench: engine …");
    measured.engine = measureEngine(options.engineEvents, 2);
    log(`bench:   ${Math.round(measured.engine.eventsPerSecond)} events/s`);
  }
  const plan = planApp(app);
  if (run("bundles")) {
    log("bench: Lambda bundles …");
    measured.bundles = await measureBundles(plan, repoRoot, options.initRuns);
  }

  if (run("replay")) {
    log("bench: replay at archive scale (on emulators of its own) …");
    measured.replay = await measureReplayAtScale({
      events: options.replayEvents,
      aggregates: options.replayAggregates,
      log,
    });
  }

  const ownSystems: readonly Section[] = ["engine", "bundles", "replay", "telemetry"];
  const needsSystem = options.only.some((s) => !ownSystems.includes(s));
  if (needsSystem) {
    const dataDir = mkdtempSync(join(tmpdir(), "canon-bench-"));
    const countsDir = join(dataDir, "calls");
    const timesDir = join(dataDir, "lambda-times");
    process.env[countCallsEnv] = countsDir;
    process.env[lambdaTimesEnv] = timesDir;
    let system: DevSystem | undefined;
    let aws: BenchAws | undefined;
    let tracker: Tracker | undefined;
    try {
      log("bench: starting the local system (handlers timed through a shadow root, bench/lambda-time.ts) …");
      const shadow = writeShadowRoot(repoRoot, plan, dataDir);
      system = await startDev({ app, contracts: contractsOf(app), repoRoot: shadow, dataDir, port: 0 });
      aws = benchAws();
      tracker = new Tracker(
        aws,
        {
          outcomes: process.env[envNames.serviceOutcomesTable("accounts")] as string,
          balances: process.env[envNames.viewTable("accounts", "balances")] as string,
        },
        options.pollMs,
      );
      tracker.start();
      const ctx: LoadContext = { url: system.url, tracker, runId: randomUUID().slice(0, 8), opened: new Set() };
      measured.plan = system.plan;
      await runSystemSections(system, aws, ctx, options, measured, log);
    } finally {
      await tracker?.stop();
      aws?.destroy();
      await system?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  if (run("telemetry")) {
    // On systems of its own, with telemetry off and on; the call counter stays off (it costs CPU).
    delete process.env[countCallsEnv];
    log("bench: what telemetry costs the hot path (its own systems, off and on, alternating) …");
    measured.telemetry = await measureTelemetryCost({ repoRoot, clients: 8, seconds: 10, rounds: 2, log });
    measured.emitCost = await measureEmitCost();
    log(
      `bench:   emitting alone: ${measured.emitCost.microsecondsPerCommand} µs of CPU a command (${measured.emitCost.recordsPerCommand} records)`,
    );
  }

  const results = report(measured);
  printSummary(results, log);
  if (options.out !== undefined) {
    writeFileSync(resolve(options.out), `${JSON.stringify(results, null, 2)}\n`);
    log(`bench: wrote ${options.out}`);
  }
  if (full) {
    writeFileSync(join(repoRoot, "bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(repoRoot, "docs", "performance.md"), markdown(results));
    log("bench: wrote bench/results.json and docs/performance.md");
  } else {
    log(`bench: --only ${options.only.join(",")}: bench/results.json and docs/performance.md not written`);
  }
  // The replay's figures in one line, last, for scripts (issue 13).
  const replay = results.replay;
  if (replay !== undefined) {
    log(
      `replay: events=${replay.events} seconds=${replay.seconds} events_per_s=${Math.round(replay.eventsPerSecond)} ` +
        `ratio_vs_batchwrite=${replay.ratio} peak_rss_mb=${replay.peakRssMb}`,
    );
  }
}

/** Everything measured, section by section (absent: not run). */
interface Measured {
  readonly options: Options;
  readonly started: Date;
  plan?: DevSystem["plan"];
  engine?: ReturnType<typeof measureEngine>;
  bundles?: Awaited<ReturnType<typeof measureBundles>>;
  raw?: RawHops;
  pipeline?: Pipeline;
  breakdown?: Breakdown;
  scaling?: RunStats[];
  openLoop?: OpenLoopStats;
  hot?: RunStats;
  /** AWS calls per accepted command in each scaling step and in the hot run: in all, and by function. */
  scalingCalls?: CallsPerEvent[];
  hotCalls?: CallsPerEvent;
  /** CPU per accepted command in each scaling step, the open loop and the hot run (bench/cpu.ts). */
  scalingCpu?: (CpuPerCommand | undefined)[];
  openLoopCalls?: Map<string, Record<string, number>>;
  openLoopCpu?: CpuPerCommand;
  hotCpu?: CpuPerCommand;
  /** CPU per second of the system doing nothing (no load), the same parts. */
  idleCpu?: CpuPerCommand;
  recorded?: Map<string, Recorded>;
  replay?: ReplayScaleFigures;
  handover?: HandoverFigures;
  telemetry?: TelemetryCostFigures;
  emitCost?: EmitCostFigures;
}

async function runSystemSections(
  system: DevSystem,
  aws: BenchAws,
  ctx: LoadContext,
  options: Options,
  measured: Measured,
  log: (line: string) => void,
): Promise<void> {
  const run = (s: Section) => options.only.includes(s);
  const streamName = system.resources.streamNames.get("core") as string;
  const topicArn = system.resources.topicArns.get("core") as string;
  const bucket = system.resources.archiveBuckets.get("core") as string;
  const coreShards = system.plan.streams.find((s) => s.bus === "core")?.shards ?? 1;
  const accounts = (n: number) => Array.from({ length: n }, (_, i) => `bench-${i}`);
  /** Before a run: up to the drain time for earlier runs' leftovers to finish (bounded; reported as backlog). */
  const quiet = async () => {
    const deadline = Date.now() + options.drainSeconds * 1000;
    while (ctx.tracker.inFlight() > 0 && Date.now() < deadline) await sleep(100);
  };
  const line = (label: string, s: RunStats) =>
    log(
      `bench:   ${label}: ${s.commandsPerSecond} commands/s, p50 ${s.latencyMs.p50AtLeast ? "≥" : ""}${s.latencyMs.p50} ms, ` +
        `p99 ${s.latencyMs.p99AtLeast ? "≥" : ""}${s.latencyMs.p99} ms (sent ${s.sent}, unfinished ${s.unfinished}, backlog at start ${s.backlogAtStart})`,
    );

  if (run("hops")) {
    log(`bench: raw emulator hops (${options.rawSeconds} s each, on the bench's own resources) …`);
    measured.raw = await measureRawHops(aws, system.plan.prefix, coreShards, options.rawSeconds, log);
    for (const [name, hop] of Object.entries(measured.raw)) {
      log(`bench:   ${name}: ${round(hop.perSecond, 1)} ${hop.unit}/s, call p50 ${hop.callMs.p50} ms`);
    }
  }

  if (run("pipeline")) {
    const mine = accounts(options.accounts);
    log(`bench: pipeline: opening ${mine.length} accounts …`);
    await ensureOpen(ctx, mine);
    await sleep(1_500); // the openings settle everywhere (archive, counters) before counting starts
    log(`bench: pipeline, ${options.clients} clients for ${options.seconds} s …`);
    const countsDir = process.env[countCallsEnv] as string;
    const timesDir = process.env[lambdaTimesEnv] as string;
    let beforeCounts = new Map<string, Record<string, number>>();
    let beforeTimes = new Map<string, LambdaTimes>();
    const stats = await closedLoop(ctx, {
      run: "pipeline",
      clients: options.clients,
      accounts: mine,
      seconds: options.seconds,
      drainSeconds: options.drainSeconds,
      onStart: () => {
        beforeCounts = readCounts(countsDir);
        beforeTimes = readLambdaTimes(timesDir);
      },
    });
    await sleep(2_000); // let the state projection, archiver and counters settle and flush
    measured.pipeline = {
      stats,
      calls: diffCounts(readCounts(countsDir), beforeCounts),
      times: diffLambdaTimes(readLambdaTimes(timesDir), beforeTimes),
    };
    line("pipeline", stats);
    if (measured.pipeline.times.size === 0) {
      log(
        "bench: WARNING: no function's Lambda time was recorded (does the runner still import <repoRoot>/<handler> and call `handler`?); the cost's Lambda compute counts the API alone",
      );
    }
  }

  if (run("breakdown")) {
    const mine = Array.from({ length: options.breakdownClients }, (_, i) => `trace-${i}`);
    await ensureOpen(ctx, mine);
    await quiet();
    const { probes, skipped } = subscribersOf(
      app,
      system.plan,
      system.resources,
      system.runner.functions,
      "FundsDeposited",
    );
    log(
      `bench: breakdown, ${options.breakdownClients} traced clients for ${options.breakdownSeconds} s (probing ${probes.map((p) => p.fn).join(", ")}) …`,
    );
    const probe = new HopProbe({
      aws,
      tracker: ctx.tracker,
      run: "breakdown",
      outcomesTable: process.env[envNames.serviceOutcomesTable("accounts")] as string,
      subscribers: probes,
      pollMs: options.breakdownPollMs,
    });
    try {
      await probe.start(topicArn, `${system.plan.prefix}-bench-tap.fifo`);
      const stats = await closedLoop(ctx, {
        run: "breakdown",
        clients: options.breakdownClients,
        accounts: mine,
        seconds: options.breakdownSeconds,
        drainSeconds: options.drainSeconds,
      });
      await probe.settle(Date.now() + options.drainSeconds * 1000);
      measured.breakdown = {
        stats,
        traces: [...probe.traces.values()],
        subscribers: probes,
        skipped,
        probeEveryMs: probe.polls.count > 0 ? Math.round(probe.polls.ms / probe.polls.count) : 0,
      };
      line("breakdown", stats);
    } finally {
      await probe.stop();
    }
  }

  if (run("scaling") || run("open-loop")) {
    const pool = accounts(options.scalingAccounts);
    log(`bench: opening ${pool.length} accounts …`);
    await ensureOpen(ctx, pool);
    // What the system costs doing nothing: its pollers, loops and emulators, before any load.
    await quiet();
    const timesDir = process.env[lambdaTimesEnv] as string;
    const before = cpuSnapshot(readLambdaTimes(timesDir));
    const started = Date.now();
    await sleep(idleSeconds * 1000);
    await sleep(1_000); // the threads write their times each half second
    measured.idleCpu = cpuPerSecond(cpuSnapshot(readLambdaTimes(timesDir)), before, Date.now() - started);
    if (measured.idleCpu) log(`bench:   idle: ${cpuLine(measured.idleCpu, "per second idle")}`);
  }
  /** A load run, with the AWS calls every function made meanwhile and the CPU it all took (its drain included). */
  const counted = async <Stats extends RunStats>(load: (onStart: () => void) => Promise<Stats>) => {
    const countsDir = process.env[countCallsEnv] as string;
    const timesDir = process.env[lambdaTimesEnv] as string;
    let before = new Map<string, Record<string, number>>();
    let cpuBefore = cpuSnapshot(new Map());
    const stats = await load(() => {
      before = readCounts(countsDir);
      cpuBefore = cpuSnapshot(readLambdaTimes(timesDir));
    });
    await sleep(1_000); // every thread writes its counts and times each half second
    const calls = diffCounts(readCounts(countsDir), before);
    const cpu = cpuPerCommand(cpuSnapshot(readLambdaTimes(timesDir)), cpuBefore, stats.accepted);
    log(`bench:     ${callsLine(calls, stats.accepted)}`);
    if (cpu) log(`bench:     ${cpuLine(cpu)}`);
    return { stats, calls: callsPerEvent(calls, stats.accepted), rawCalls: calls, cpu };
  };
  if (run("scaling")) {
    measured.scaling = [];
    measured.scalingCalls = [];
    measured.scalingCpu = [];
    for (const clients of options.scalingClients) {
      await quiet();
      log(`bench: scaling, ${clients} clients over ${options.scalingAccounts} accounts for ${options.stepSeconds} s …`);
      const { stats, calls, cpu } = await counted((onStart) =>
        closedLoop(ctx, {
          run: `scaling-${clients}`,
          clients,
          accounts: accounts(options.scalingAccounts),
          seconds: options.stepSeconds,
          drainSeconds: options.drainSeconds,
          onStart,
        }),
      );
      measured.scaling.push(stats);
      measured.scalingCalls.push(calls);
      measured.scalingCpu.push(cpu);
      line(`${clients} clients`, stats);
    }
  }
  if (run("open-loop")) {
    await quiet();
    log(
      `bench: open loop, ${options.rate}/s offered (${options.arrivals}) over ${options.scalingAccounts} accounts for ${options.stepSeconds} s …`,
    );
    const { stats, rawCalls, cpu } = await counted((onStart) =>
      openLoop(ctx, {
        run: "open-loop",
        rate: options.rate,
        seconds: options.stepSeconds,
        drainSeconds: options.drainSeconds,
        accounts: accounts(options.scalingAccounts),
        maxInFlight: options.maxInFlight,
        arrivals: options.arrivals,
        seed: options.seed,
        onStart,
      }),
    );
    measured.openLoop = stats;
    measured.openLoopCalls = rawCalls;
    measured.openLoopCpu = cpu;
    line(`open loop (offered ${stats.offeredPerSecond}/s, shed ${stats.shed})`, stats);
  }
  if (run("hot")) {
    await ensureOpen(ctx, ["bench-hot"]);
    await quiet();
    log(`bench: hot aggregate, ${options.hotClients} clients on one account for ${options.stepSeconds} s …`);
    const hot = await counted((onStart) =>
      closedLoop(ctx, {
        run: "hot",
        clients: options.hotClients,
        accounts: ["bench-hot"],
        seconds: options.stepSeconds,
        drainSeconds: options.drainSeconds,
        onStart,
      }),
    );
    measured.hot = hot.stats;
    measured.hotCalls = hot.calls;
    measured.hotCpu = hot.cpu;
    line("hot", measured.hot);
  }

  const loadRecords = ctx.tracker.records().filter((r) => r.run !== "open");
  if (loadRecords.length > 0) {
    log("bench: waiting for the archive to pass the runs …");
    const moment = new Date();
    for (let i = 0; i < 300; i++) {
      if ((await archivePassed({ bucket, bus: "core", streamName, moment })).passed) break;
      await sleep(200);
    }
  }
  if (loadRecords.length > 0) {
    log(`bench: reading what the system recorded for ${loadRecords.length} commands (API, outcomes, archive) …`);
    measured.recorded = await collectRecorded(aws, bucket, "core", "accounts", loadRecords);
  }
  // Last: it adds a generated archive to the system's own.
  if (run("handover")) {
    log("bench: warm-up handover at archive scale under live traffic …");
    measured.handover = await measureHandoverAtScale(system, repoRoot, {
      events: options.replayEvents,
      aggregates: options.replayAggregates,
      log,
    });
  }
}

type Plan = DevSystem["plan"];

/** The API's share of Lambda: one invocation per command, lasting its POST (measured by the bench). */
function apiTime(records: readonly CommandRecord[]): LambdaTimes {
  const posts = records.filter((r) => r.postMs !== undefined);
  return {
    who: "api",
    invocations: posts.length,
    records: posts.length,
    busyMs: posts.reduce((s, r) => s + (r.postMs as number), 0),
  };
}

/** Lambda memory per function, as infra/canon-function.ts sets it (replayers 1024 MB, the rest 512 MB). */
function memoryMb(plan: Plan, fn: string): number {
  return plan.functions.find((f) => f.id === fn)?.role === "replayer" ? 1024 : 512;
}

/** Records one invocation can carry (its event source's batch size; the API: one request). */
function batchSizeOf(plan: Plan, fn: string): number {
  const source = plan.functions.find((f) => f.id === fn)?.source;
  return source !== undefined && "batchSize" in source ? source.batchSize : 1;
}

function lambdaRows(pipeline: Pipeline, plan: Plan) {
  const events = pipeline.stats.accepted || 1;
  const all = new Map(pipeline.times);
  all.set("api", apiTime(pipeline.stats.records));
  return [...all.values()]
    .sort((a, b) => a.who.localeCompare(b.who))
    .map((t) => ({
      function: t.who,
      role: t.who === "api" ? "api" : (plan.functions.find((f) => f.id === t.who)?.role ?? "unknown"),
      memoryMb: memoryMb(plan, t.who),
      invocationsPerEvent: round(t.invocations / events, 3),
      recordsPerInvocation: round(t.records / t.invocations, 2),
      msPerInvocation: round(t.busyMs / t.invocations, 1),
      msPerEvent: round(t.busyMs / events, 1),
      batchSize: batchSizeOf(plan, t.who),
    }));
}

type LambdaRow = ReturnType<typeof lambdaRows>[number];

const latencyFigure = (s: RunStats) => ({
  p50: s.latencyMs.p50,
  p99: s.latencyMs.p99,
  ...(s.latencyMs.p50AtLeast ? { p50AtLeast: true } : {}),
  ...(s.latencyMs.p99AtLeast ? { p99AtLeast: true } : {}),
});

function runFigure(s: RunStats, recorded: ReadonlyMap<string, Recorded> | undefined, limitPerSecond?: number) {
  return {
    seconds: s.seconds,
    sent: s.sent,
    accepted: s.accepted,
    rejected: s.rejected,
    conflicted: s.conflicted,
    failed: s.failed,
    unfinished: s.unfinished,
    backlogAtStart: s.backlogAtStart,
    commandsPerSecond: s.commandsPerSecond,
    latencyMs: latencyFigure(s),
    ...(limitPerSecond === undefined ? {} : { ratio: round(s.commandsPerSecond / limitPerSecond, 3) }),
    pollEveryMs: s.pollEveryMs,
    benchLoopDelayMs: s.benchLoopDelayMs,
    segmentsMs: recorded === undefined ? undefined : segmentFigures(runSegments(s.records, recorded)),
  };
}

const segmentFigures = (segments: readonly Segment[]) =>
  segments.map((g) => ({ from: g.from, to: g.to, p50: g.p50, p99: g.p99, samples: g.samples, source: g.source }));

function report(m: Measured) {
  const { options } = m;
  const limit = m.raw
    ? (Object.entries(m.raw)
        .filter(([, h]) => h.inPipeline)
        .sort(([, a], [, b]) => a.perSecond - b.perSecond)[0] as [string, RawHops[keyof RawHops]])
    : undefined;
  const limitName = limit ? `raw ${limit[0]} (the slowest emulator hop every event takes)` : undefined;
  const limitPerSecond = limit ? round(limit[1].perSecond, 1) : undefined;
  const recorded = m.recorded;
  const out: Record<string, unknown> = {
    date: m.started.toISOString(),
    machine: machine(),
    options,
    sections: options.only,
  };
  if (m.engine) {
    out.engine = {
      eventsPerSecond: Math.round(m.engine.eventsPerSecond),
      limit: "JSON.parse of the same bytes",
      limitPerSecond: Math.round(m.engine.rawParsePerSecond),
      ratio: round(m.engine.eventsPerSecond / m.engine.rawParsePerSecond, 3),
      microsPerEvent: m.engine.microsPerEvent,
    };
  }
  if (m.raw) {
    out.rawHops = Object.fromEntries(
      Object.entries(m.raw).map(([k, h]) => [k, { ...h, perSecond: round(h.perSecond, 1) }]),
    );
  }
  const pipeline = m.pipeline;
  if (pipeline) {
    const s = pipeline.stats;
    const events = s.accepted;
    const eventsPerSecond = s.commandsPerSecond; // one event per deposit
    out.pipeline = {
      clients: options.clients,
      accounts: options.accounts,
      commands: s.accepted,
      seconds: s.seconds,
      commandsPerSecond: s.commandsPerSecond,
      eventsPerSecond,
      unfinished: s.unfinished,
      latencyMs: latencyFigure(s),
      limit: limitName,
      limitPerSecond,
      ratio: limitPerSecond ? round(eventsPerSecond / limitPerSecond, 3) : undefined,
      rawHopsPerSecond: m.raw
        ? Object.fromEntries(Object.entries(m.raw).map(([k, v]) => [k, round(v.perSecond, 1)]))
        : undefined,
      segmentsMs: recorded ? segmentFigures(runSegments(s.records, recorded)) : undefined,
    };
    out.awsCallsPerEvent = callsByHop(pipeline.calls, events);
    if (m.plan) {
      const rows = lambdaRows(pipeline, m.plan);
      // The command handler's share spent after its append, until it saw its commit in its state.
      const waits = recorded
        ? s.records
            .filter((r) => r.status === "accepted")
            .map((r) => recorded.get(r.commandId))
            .filter((x) => x?.appendedAt !== undefined && x.outcomeAt !== undefined)
            .map((x) => (x?.outcomeAt as number) - (x?.appendedAt as number))
        : [];
      out.lambdaTime = {
        functions: rows,
        msPerEvent: round(
          rows.reduce((sum, r) => sum + r.msPerEvent, 0),
          1,
        ),
        commitWaitMsPerCommand:
          waits.length > 0 ? round(waits.reduce((a, b) => a + b, 0) / waits.length, 1) : undefined,
      };
      out.cost = {
        measuredAtEventsPerSecond: eventsPerSecond,
        asMeasured: costModel(pipeline.calls, rows, events, m.plan, options.costRate, false),
        fullyBatched: costModel(floorCalls(pipeline.calls, events), rows, events, m.plan, options.costRate, true),
      };
    }
  }
  if (m.breakdown) {
    const b = m.breakdown;
    const byId = new Map(b.stats.records.map((r) => [r.commandId, r]));
    out.breakdown = {
      clients: options.breakdownClients,
      pollMs: options.breakdownPollMs,
      probeEveryMs: b.probeEveryMs,
      commands: b.traces.length,
      run: runFigure(b.stats, recorded),
      hopsMs: recorded ? segmentFigures(traceSegments(b.traces, byId, recorded, b.subscribers)) : undefined,
      notTimed: b.skipped,
      rawCallMs: m.raw
        ? Object.fromEntries(Object.entries(m.raw).map(([k, h]) => [k, h.deliveryMs ?? h.callMs]))
        : undefined,
    };
  }
  if (m.idleCpu) out.idleCpu = { seconds: idleSeconds, ...m.idleCpu };
  if (m.scaling) {
    out.scaling = {
      accounts: options.scalingAccounts,
      stepSeconds: options.stepSeconds,
      drainSeconds: options.drainSeconds,
      limit: limitName,
      limitPerSecond,
      steps: m.scaling.map((s, i) => ({
        clients: options.scalingClients[i],
        ...runFigure(s, recorded, limitPerSecond),
        awsCallsPerEvent: m.scalingCalls?.[i],
        cpuPerCommand: m.scalingCpu?.[i],
      })),
    };
  }
  if (m.openLoop) {
    const o = m.openLoop;
    out.openLoop = {
      accounts: options.scalingAccounts,
      arrivals: options.arrivals,
      seed: options.seed,
      maxInFlight: options.maxInFlight,
      rate: o.rate,
      offered: o.offered,
      offeredPerSecond: o.offeredPerSecond,
      shed: o.shed,
      achievedPerSecond: o.commandsPerSecond,
      achievedRatio: round(o.commandsPerSecond / o.offeredPerSecond, 3),
      sendLagMs: o.sendLagMs,
      limit: limitName,
      limitPerSecond,
      ...runFigure(o, recorded, limitPerSecond),
      awsCallsByHop: m.openLoopCalls && o.accepted > 0 ? callsByHop(m.openLoopCalls, o.accepted) : undefined,
      cpuPerCommand: m.openLoopCpu,
    };
  }
  if (m.hot) {
    // One aggregate's commands are handled one after another (a FIFO group): the bound to beat is
    // one command per full pipeline round trip (invariant 9), measured by the 1-client step.
    const single = m.scaling?.find((_, i) => options.scalingClients[i] === 1);
    const roundTripPerSecond = single && single.latencyMs.p50 > 0 ? round(1000 / single.latencyMs.p50, 2) : undefined;
    out.hotAggregate = {
      clients: options.hotClients,
      acceptedPerSecond: m.hot.commandsPerSecond,
      roundTripLimit: "one command per pipeline round trip (1000 ÷ the 1-client p50)",
      roundTripPerSecond,
      roundTripRatio: roundTripPerSecond ? round(m.hot.commandsPerSecond / roundTripPerSecond, 2) : undefined,
      limit: limitName,
      limitPerSecond,
      ...runFigure(m.hot, recorded, limitPerSecond),
      awsCallsPerEvent: m.hotCalls,
      cpuPerCommand: m.hotCpu,
    };
  }
  if (m.telemetry) out.telemetry = { ...m.telemetry, ...(m.emitCost ? { emit: m.emitCost } : {}) };
  if (m.replay) {
    const r = m.replay;
    out.replay = {
      events: r.events,
      aggregates: r.aggregates,
      archive: {
        records: r.records,
        objects: r.objects,
        mb: round(r.archiveMb, 1),
        writtenSeconds: round(r.generateSeconds, 1),
      },
      seconds: round(r.seconds, 1),
      eventsPerSecond: round(r.eventsPerSecond, 1),
      limit: "raw BatchWriteItem (25 items a call, 4 at once) on the same emulator",
      limitPerSecond: round(r.rawWritesPerSecond, 1),
      ratio: round(r.eventsPerSecond / r.rawWritesPerSecond, 3),
      peakRssMb: round(r.peakRssMb, 0),
      resume: {
        killedAfterEvents: r.resume.killedAfterEvents,
        resumedAfter: r.resume.resumedAfter,
        seconds: round(r.resume.seconds, 1),
      },
      equal: r.equal,
    };
  }
  if (m.handover) out.handover = { ...m.handover, replaySeconds: round(m.handover.replaySeconds, 1) };
  if (m.bundles) {
    const b = m.bundles;
    out.lambda = {
      emptyModuleInitMs: round(b.emptyInitMs, 1),
      minimalSdkInitMs: round(b.minimalSdkInitMs, 1),
      minimalSdkInitCpuMs: round(b.minimalSdkInitCpuMs, 1),
      targets: bundleTargets,
      functions: b.bundles.map((f) => ({
        ...f,
        kib: round(f.bytes / 1024, 1),
        kibTarget: kibTargetFor(f.role, f.function),
        initMs: f.initMs === undefined ? undefined : round(f.initMs, 1),
        initRatio: f.initMs === undefined ? undefined : round(f.initMs / b.emptyInitMs, 1),
        initSdkRatio: f.initMs === undefined ? undefined : round(f.initMs / b.minimalSdkInitMs, 2),
        initCpuMs: f.initCpuMs === undefined ? undefined : round(f.initCpuMs, 1),
        initCpuSdkRatio: f.initCpuMs === undefined ? undefined : round(f.initCpuMs / b.minimalSdkInitCpuMs, 2),
      })),
    };
  }
  return out as unknown as Results;
}

/** The shape of bench/results.json (each section present when it ran). */
interface Results {
  date: string;
  machine: ReturnType<typeof machine>;
  options: Options;
  sections: Section[];
  engine?: {
    eventsPerSecond: number;
    limit: string;
    limitPerSecond: number;
    ratio: number;
    microsPerEvent?: EngineFigures["microsPerEvent"];
  };
  rawHops?: RawHops;
  pipeline?: {
    clients: number;
    accounts: number;
    commands: number;
    seconds: number;
    commandsPerSecond: number;
    eventsPerSecond: number;
    unfinished: number;
    latencyMs: ReturnType<typeof latencyFigure>;
    limit?: string;
    limitPerSecond?: number;
    ratio?: number;
    rawHopsPerSecond?: Record<string, number>;
    segmentsMs?: ReturnType<typeof segmentFigures>;
  };
  awsCallsPerEvent?: HopCalls[];
  lambdaTime?: { functions: LambdaRow[]; msPerEvent: number; commitWaitMsPerCommand?: number };
  cost?: {
    measuredAtEventsPerSecond: number;
    asMeasured: ReturnType<typeof costModel>;
    fullyBatched: ReturnType<typeof costModel>;
  };
  breakdown?: {
    clients: number;
    pollMs: number;
    probeEveryMs: number;
    commands: number;
    run: ReturnType<typeof runFigure>;
    hopsMs?: ReturnType<typeof segmentFigures>;
    notTimed: { fn: string; reason: string }[];
    rawCallMs?: Record<string, { p50: number; p99: number }>;
  };
  scaling?: {
    accounts: number;
    stepSeconds: number;
    drainSeconds: number;
    limit?: string;
    limitPerSecond?: number;
    steps: ({ clients: number; awsCallsPerEvent?: CallsPerEvent; cpuPerCommand?: CpuPerCommand } & ReturnType<
      typeof runFigure
    >)[];
  };
  openLoop?: {
    accounts: number;
    arrivals: string;
    seed: number;
    maxInFlight: number;
    rate: number;
    offered: number;
    offeredPerSecond: number;
    shed: number;
    achievedPerSecond: number;
    achievedRatio: number;
    sendLagMs: { p50: number; max: number };
    limit?: string;
    limitPerSecond?: number;
    /** Calls per event at each hop at the offered rate (the target's condition), beside the floor. */
    awsCallsByHop?: HopCalls[];
    cpuPerCommand?: CpuPerCommand;
  } & ReturnType<typeof runFigure>;
  /** CPU ms per second of wall time while the system did nothing (`totalMs` is per second here). */
  idleCpu?: CpuPerCommand & { seconds: number };
  hotAggregate?: {
    clients: number;
    acceptedPerSecond: number;
    roundTripLimit: string;
    roundTripPerSecond?: number;
    roundTripRatio?: number;
    limit?: string;
    limitPerSecond?: number;
    awsCallsPerEvent?: CallsPerEvent;
    cpuPerCommand?: CpuPerCommand;
  } & ReturnType<typeof runFigure>;
  handover?: HandoverFigures;
  /** What the analytics bus's telemetry costs the hot path (issue 17): off/on pairs, and emitting alone. */
  telemetry?: TelemetryCostFigures & { emit?: EmitCostFigures };
  replay?: {
    events: number;
    aggregates: number;
    archive: { records: number; objects: number; mb: number; writtenSeconds: number };
    seconds: number;
    eventsPerSecond: number;
    limit: string;
    limitPerSecond: number;
    ratio: number;
    peakRssMb: number;
    resume: { killedAfterEvents: number; resumedAfter: number; seconds: number };
    equal: boolean;
  };
  lambda?: {
    emptyModuleInitMs: number;
    minimalSdkInitMs: number;
    minimalSdkInitCpuMs: number;
    targets: typeof bundleTargets;
    functions: {
      function: string;
      role: string;
      handler: string;
      bytes: number;
      kib: number;
      kibTarget: number;
      initMs?: number;
      initRatio?: number;
      initSdkRatio?: number;
      initCpuMs?: number;
      initCpuSdkRatio?: number;
      largest: readonly BundleInput[];
      error?: string;
    }[];
  };
}

/**
 * The calls a deployment pays for: the main thread's reads are the local runner's steering (the
 * bench's own watching uses uncounted clients), so only the API's command path is kept.
 */
function billable(calls: Map<string, Record<string, number>>): Map<string, Record<string, number>> {
  const out = new Map(calls);
  const main = calls.get("main");
  if (main !== undefined) {
    out.set("main", {
      "DynamoDB.PutItem": main["DynamoDB.PutItem"] ?? 0,
      "SQS.SendMessage": main["SQS.SendMessage"] ?? 0,
    });
  }
  return out;
}

/** Calls per event at each hop, by operation, beside the floor full batches would cost. */
function callsByHop(calls: ReadonlyMap<string, Record<string, number>>, events: number): HopCalls[] {
  return [...calls]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([who, counts]) => {
      const perEvent = Object.fromEntries(Object.entries(counts).map(([op, n]) => [op, round(n / events, 3)]));
      const total = Object.values(counts).reduce((sum, n) => sum + n, 0) / events;
      const floor = Object.keys(counts).reduce((sum, op) => sum + 1 / (batchLimit[op] ?? 10), 0);
      return {
        hop: who === "main" ? "api (+ local steering)" : who,
        perEvent,
        total: round(total, 3),
        floor: round(floor, 3),
        ratio: round(total / floor, 2),
      };
    });
}

interface HopCalls {
  hop: string;
  perEvent: Record<string, number>;
  total: number;
  floor: number;
  ratio: number;
}

/** The same calls as if every one were fully batched (the floor of the calls-per-event table). */
function floorCalls(calls: Map<string, Record<string, number>>, events: number): Map<string, Record<string, number>> {
  return new Map(
    [...billable(calls)].map(([who, counts]) => [
      who,
      Object.fromEntries(Object.keys(counts).map((op) => [op, events / (batchLimit[op] ?? 10)])),
    ]),
  );
}

/**
 * Dollars per million events for the default topology at `rate` events/s, from the calls counted
 * per event in the pipeline run, each function's measured Lambda time (billed duration: handler
 * wall time, waits included) and invocations, and the plan's shards and subscriptions.
 * Fully batched: calls and invocations at their floor; each invocation as long as measured, except
 * a command handler's, whose time is per command (it handles a batch's commands one by one, each
 * waiting for its commit) — so the floor's compute is a lower bound.
 * A relay reading by enhanced fan-out (`BusDefinition.relayReadsBy`) adds a consumer-shard hour per
 * shard of its stream and every byte it reads; the same topology with every relay by polling and
 * with every relay by enhanced fan-out is priced beside it (`relayReadsBy`).
 */
function costModel(
  measured: Map<string, Record<string, number>>,
  lambda: readonly LambdaRow[],
  events: number,
  plan: Plan,
  rate: number,
  batched: boolean,
) {
  const calls = billable(measured);
  const sum = (op: (name: string) => boolean) =>
    [...calls.values()].reduce((s, c) => s + Object.entries(c).reduce((t, [k, n]) => (op(k) ? t + n : t), 0), 0) /
    events;
  const perMillion = 1e6;
  const hours = perMillion / rate / 3600;
  const shards = plan.streams.reduce((s, stream) => s + stream.shards, 0);
  const subscribers = plan.subscriptions.filter((s) => s.eventTypes.includes("FundsDeposited")).length;
  const eventBytes = 700;
  const kinesisPuts = sum((k) => k === "Kinesis.PutRecord") + sum((k) => k === "Kinesis.PutRecords");
  const snsPublishes = sum((k) => k === "SNS.PublishBatch") * 10;
  const sqsRequests = sum((k) => k.startsWith("SQS.")) + subscribers; // + SNS's deliveries into the queues
  const perFunction = lambda.map((r) => {
    const invocations = batched ? 1 / r.batchSize : r.invocationsPerEvent;
    const ms = batched && r.role !== "command-handler" ? r.msPerInvocation * invocations : r.msPerEvent;
    return { invocations, gbSeconds: (ms / 1000) * (r.memoryMb / 1024) };
  });
  const invocations = perFunction.reduce((s, f) => s + f.invocations, 0);
  const gbSeconds = perFunction.reduce((s, f) => s + f.gbSeconds, 0);
  const apiRequests = lambda.find((r) => r.function === "api")?.invocationsPerEvent ?? 1;
  const writes =
    sum((k) => /DynamoDB\.(PutItem|UpdateItem|DeleteItem)$/.test(k)) + sum((k) => k === "DynamoDB.BatchWriteItem") * 25;
  const reads = sum((k) => /DynamoDB\.(GetItem|Query|Scan)$/.test(k)) + sum((k) => k === "DynamoDB.BatchGetItem") * 10;
  const s3Puts = sum((k) => k === "S3.PutObject");
  // Enhanced fan-out: per consumer-shard hour, and per GB the consumer reads (each event once, on
  // the bus that carries it; the model counts that bus's events only).
  const eventBus = plan.subscriptions.find((s) => s.eventTypes.includes("FundsDeposited"))?.bus;
  const fanOut = (readsByFanOut: (bus: string) => boolean) => {
    const consumerShards = plan.streams.filter((s) => readsByFanOut(s.bus)).reduce((n, s) => n + s.shards, 0);
    const consumerShardHours = consumerShards * hours * prices.kinesis.enhancedFanOutConsumerShardHour;
    const dataRetrieval =
      eventBus !== undefined && readsByFanOut(eventBus)
        ? ((eventBytes * perMillion) / 2 ** 30) * prices.kinesis.enhancedFanOutDataRetrievalPerGB
        : 0;
    return { consumerShards, consumerShardHours, dataRetrieval, total: consumerShardHours + dataRetrieval };
  };
  const planned = fanOut((bus) =>
    plan.functions.some(
      (f) =>
        f.role === "relay" &&
        f.source.kind === "kinesis" &&
        f.source.bus === bus &&
        f.source.readsBy === "enhanced-fan-out",
    ),
  );
  const everyBus = fanOut(() => true);
  const breakdown = {
    apiGatewayRequests: apiRequests * prices.apiGatewayHttp.requestsPerMillion,
    kinesisShardHours: shards * hours * prices.kinesis.shardHour,
    kinesisPutUnits: kinesisPuts * prices.kinesis.putPayloadUnitsPerMillion,
    snsPublish:
      Math.min(1, snsPublishes) * prices.snsFifo.publishRequestsPerMillion +
      (eventBytes * perMillion * prices.snsFifo.publishPayloadPerGB) / 2 ** 30 / perMillion,
    snsDeliveries: subscribers * prices.snsFifo.deliveriesToSqsPerMillion,
    sqsRequests: sqsRequests * prices.sqsFifo.requestsPerMillion,
    lambdaRequests: invocations * prices.lambdaArm64.requestsPerMillion,
    lambdaCompute: gbSeconds * perMillion * prices.lambdaArm64.gbSecond,
    dynamodbWrites: writes * prices.dynamodbOnDemand.writeRequestUnitsPerMillion,
    dynamodbReads: reads * prices.dynamodbOnDemand.readRequestUnitsPerMillion,
    s3Puts: s3Puts * perMillion * (prices.s3Standard.putPer1000 / 1000),
    s3StorageMonth: ((eventBytes * perMillion) / 2 ** 30) * prices.s3Standard.storageGBMonth,
    // Only when the plan reads some stream so: the default topology's table stays as it was.
    ...(planned.total > 0 ? { kinesisEnhancedFanOut: planned.total } : {}),
  };
  const total = Object.values(breakdown).reduce((s, n) => s + n, 0);
  const byPolling = total - planned.total;
  const relayReadsBy = {
    polling: round(byPolling, 2),
    enhancedFanOut: round(byPolling + everyBus.total, 2),
    enhancedFanOutAdds: {
      consumerShardHours: round(everyBus.consumerShardHours, 3),
      dataRetrieval: round(everyBus.dataRetrieval, 4),
    },
  };
  return {
    ratePerSecond: rate,
    pricesDated: prices.date,
    dollarsPerMillionEvents: round(total, 2),
    breakdown: Object.fromEntries(Object.entries(breakdown).map(([k, v]) => [k, round(v, 3)])),
    relayReadsBy,
    perEvent: {
      apiRequests: round(apiRequests, 3),
      kinesisPuts: round(kinesisPuts, 3),
      snsPublishes: round(Math.min(1, snsPublishes), 3),
      sqsRequests: round(sqsRequests, 2),
      lambdaInvocations: round(invocations, 2),
      lambdaGbSeconds: round(gbSeconds, 4),
      dynamodbWriteUnits: round(writes, 2),
      dynamodbReadUnits: round(reads, 2),
      s3Puts: round(s3Puts, 4),
    },
    assumptions: [
      `${shards} Kinesis shards (the plan's streams) for ${round(hours, 2)} hours (a million events at ${rate}/s)`,
      `${subscribers} queues subscribe to FundsDeposited (one SNS delivery and one SQS send each)`,
      "one event per commit, each ≤ 25 KiB (one PUT payload unit) and about 700 bytes",
      batched
        ? "Lambda: one invocation per full batch of each function's event source; each as long as measured, a command handler's time per command as measured (a lower bound)"
        : "Lambda: each function's invocations and billed duration (handler wall time, waits included) as measured in the pipeline run, at 512 MB (replayers 1024 MB); the API's as one invocation per command lasting its POST",
      "HTTP API: one request per command",
      "DynamoDB: one unit per item written or read (items ≤ 1 KiB; consistent reads count one unit)",
      "the local runner's polling is counted as the event source mappings' (SQS receives are billed on AWS; Kinesis GetRecords are not)",
      `every relay reading by enhanced fan-out instead of polling (${everyBus.consumerShards} consumer-shards at $${prices.kinesis.enhancedFanOutConsumerShardHour} an hour each, each event read once at $${prices.kinesis.enhancedFanOutDataRetrievalPerGB}/GB): $${relayReadsBy.enhancedFanOut}/M instead of $${relayReadsBy.polling}/M (+$${round(everyBus.total, 3)}); the command handler's shorter wait for its commit on AWS (docs/aws-capacity.md) is not in it`,
    ],
  };
}

const atLeast = (l: { p50: number; p99: number; p50AtLeast?: boolean; p99AtLeast?: boolean }, p: "p50" | "p99") =>
  `${(p === "p50" ? l.p50AtLeast : l.p99AtLeast) ? "≥" : ""}${l[p]}`;

function printSummary(r: Results, log: (line: string) => void): void {
  const parts = (label: string, segments: ReturnType<typeof segmentFigures> | undefined) => {
    if (segments === undefined) return;
    log(`bench:   ${label} p50/p99 ms: ${segments.map((g) => `${g.from} → ${g.to} ${g.p50}/${g.p99}`).join(", ")}`);
  };
  if (r.pipeline) {
    log(
      `bench: pipeline ${r.pipeline.commandsPerSecond} commands/s, p50 ${atLeast(r.pipeline.latencyMs, "p50")} ms, p99 ${atLeast(r.pipeline.latencyMs, "p99")} ms; limit ${r.pipeline.limit}: ${r.pipeline.limitPerSecond}/s — ratio ${r.pipeline.ratio}`,
    );
    parts("pipeline", r.pipeline.segmentsMs);
  }
  for (const s of r.scaling?.steps ?? []) {
    log(
      `bench: scaling ${s.clients} clients: ${s.commandsPerSecond} commands/s, p50 ${atLeast(s.latencyMs, "p50")} ms, p99 ${atLeast(s.latencyMs, "p99")} ms, unfinished ${s.unfinished} — ratio ${s.ratio}`,
    );
    parts(`${s.clients} clients`, s.segmentsMs);
  }
  if (r.openLoop) {
    const o = r.openLoop;
    log(
      `bench: open loop offered ${o.rate}/s (${o.offered} arrivals), achieved ${o.achievedPerSecond}/s (${o.achievedRatio}), p50 ${atLeast(o.latencyMs, "p50")} ms, p99 ${atLeast(o.latencyMs, "p99")} ms from the scheduled send, shed ${o.shed}, unfinished ${o.unfinished}`,
    );
    parts("open loop", o.segmentsMs);
  }
  if (r.hotAggregate) {
    const h = r.hotAggregate;
    log(
      `bench: hot aggregate ${h.clients} clients: ${h.acceptedPerSecond} accepted/s, p50 ${atLeast(h.latencyMs, "p50")} ms, p99 ${atLeast(h.latencyMs, "p99")} ms; one round trip per command would be ${h.roundTripPerSecond ?? "–"}/s (ratio ${h.roundTripRatio ?? "–"})`,
    );
    parts("hot", h.segmentsMs);
  }
  for (const h of r.breakdown?.hopsMs ?? []) {
    log(`bench: hop ${h.from} → ${h.to}: p50 ${h.p50} ms, p99 ${h.p99} ms (${h.samples} commands)`);
  }
  for (const f of r.lambdaTime?.functions ?? []) {
    log(
      `bench: lambda ${f.function}: ${f.invocationsPerEvent} invocations/event, ${f.msPerInvocation} ms each, ${f.msPerEvent} ms/event`,
    );
  }
  if (r.cost) {
    log(
      `bench: cost $${r.cost.asMeasured.dollarsPerMillionEvents}/M events as measured, $${r.cost.fullyBatched.dollarsPerMillionEvents}/M fully batched`,
    );
  }
  if (r.handover) {
    const h = r.handover;
    log(
      `bench: handover ${h.replayedEvents} events replayed in ${h.replaySeconds} s under ${h.duringReplay} live deposits; view ${h.equal ? "equal" : `OFF on ${h.mismatches} items`}`,
    );
  }
  if (r.replay) {
    log(
      `bench: replay ${r.replay.eventsPerSecond} events/s, ${r.replay.limit} ${r.replay.limitPerSecond}/s — ratio ${r.replay.ratio} (target ≥ 1); ${r.replay.events} events in ${r.replay.seconds} s (target ≤ 300); peak RSS ${r.replay.peakRssMb} MB (limit 512)`,
    );
  }
  if (r.engine) {
    log(
      `bench: engine ${r.engine.eventsPerSecond} events/s, ${r.engine.limit} ${r.engine.limitPerSecond}/s — ratio ${r.engine.ratio} (target ≥ ${engineTargetRatio})`,
    );
    const us = r.engine.microsPerEvent;
    if (us !== undefined) {
      log(
        `bench:   µs per event: parse ${us.parse}, envelope checks ${us.check}, arbitrate ${us.arbitrate}, evolve ${us.evolve}`,
      );
    }
  }
  if (r.lambda) {
    const l = r.lambda;
    log(
      `bench: bundles (init: empty module ${l.emptyModuleInitMs} ms, minimal SDK handler ${l.minimalSdkInitMs} ms, CPU ${l.minimalSdkInitCpuMs} ms; targets ≤ ${l.targets.kib} KiB, ${l.targets.consumerRoles.join("/")} ≤ ${l.targets.consumerKib} KiB, init ≤ ${l.targets.initRatio}× the minimal SDK handler)`,
    );
    log(
      `bench:   ${"function".padEnd(28)} ${"KiB".padStart(6)} ${"target".padStart(6)} ${"init ms".padStart(8)} ${"÷ SDK".padStart(6)} ${"CPU ms".padStart(7)} ${"÷ SDK".padStart(6)}`,
    );
    for (const f of l.functions) {
      const flag = f.kib > f.kibTarget || (f.initSdkRatio ?? 0) > l.targets.initRatio ? "  over" : "";
      log(
        `bench:   ${f.function.padEnd(28)} ${String(f.kib).padStart(6)} ${String(f.kibTarget).padStart(6)} ${String(f.initMs ?? "failed").padStart(8)} ${String(f.initSdkRatio ?? "–").padStart(6)} ${String(f.initCpuMs ?? "–").padStart(7)} ${String(f.initCpuSdkRatio ?? "–").padStart(6)}${flag}`,
      );
      for (const input of f.largest) {
        log(
          `bench:     ${String(input.kib).padStart(6)} KiB ${input.name}, from ${input.via.slice(1, -1).join(" → ") || "the handler"}`,
        );
      }
      if (f.error !== undefined) log(`bench:     failed: ${f.error}`);
    }
  }
}

function markdown(r: Results): string {
  const m = r.machine;
  const o = r.options;
  const rows = (header: string[], lines: (string | number | undefined)[][]) =>
    [
      `| ${header.join(" | ")} |`,
      `|${header.map(() => "---").join("|")}|`,
      ...lines.map((l) => `| ${l.map((c) => c ?? "–").join(" | ")} |`),
    ].join("\n");
  /** The calls-per-event table: each hop's calls, its floor, their ratio, by operation. */
  const hopCallsTable = (hops: readonly HopCalls[]) =>
    rows(
      ["hop", "calls/event", "floor", "ratio", "by operation"],
      hops.map((h) => [
        h.hop,
        h.total,
        h.floor,
        h.ratio,
        Object.entries(h.perEvent)
          .map(([op, n]) => `${op} ${n}`)
          .join(", "),
      ]),
    );
  const seg = (s: { segmentsMs?: { p50: number; p99: number }[] }, i: number) => {
    const g = s.segmentsMs?.[i];
    return g === undefined || Number.isNaN(g.p50) ? "–" : `${g.p50} / ${g.p99}`;
  };
  const engine = r.engine;
  const pipeline = r.pipeline;
  const scaling = r.scaling;
  const open = r.openLoop;
  const hot = r.hotAggregate;
  const breakdown = r.breakdown;
  const cost = r.cost;
  const cpuRuns = [
    ...(scaling?.steps ?? []).map((s) => ({
      name: `scaling, ${s.clients} clients`,
      s,
      calls: s.awsCallsPerEvent?.total,
      cpu: s.cpuPerCommand,
    })),
    ...(open
      ? [
          {
            name: `open loop, ${open.rate}/s offered`,
            s: open,
            calls: open.awsCallsByHop
              ? round(
                  open.awsCallsByHop.reduce((sum, h) => sum + h.total, 0),
                  2,
                )
              : undefined,
            cpu: open.cpuPerCommand,
          },
        ]
      : []),
    ...(hot
      ? [
          {
            name: `hot aggregate, ${hot.clients} clients`,
            s: hot,
            calls: hot.awsCallsPerEvent?.total,
            cpu: hot.cpuPerCommand,
          },
        ]
      : []),
  ].filter((run): run is typeof run & { cpu: CpuPerCommand } => run.cpu !== undefined);
  const loadRuns = [
    ...(pipeline ? [{ name: `pipeline (${pipeline.clients} clients)`, s: pipeline }] : []),
    ...(scaling?.steps ?? []).map((s) => ({ name: `scaling, ${s.clients} clients`, s })),
    ...(open ? [{ name: `open loop, ${open.rate}/s offered`, s: open }] : []),
    ...(hot ? [{ name: `hot aggregate, ${hot.clients} clients`, s: hot }] : []),
  ];
  return `# Performance

Measured by \`npm run bench\` (bench/run.ts) on ${r.date.slice(0, 10)}: every figure beside a limit
measured in the same run on the same machine, and their ratio. The raw numbers are in
[bench/results.json](../bench/results.json). Local figures come from the embedded emulators on one
machine: they compare Canon with what the same emulators and runtime can do, not with AWS.

**Machine:** ${m.nproc} cores (\`nproc\`), ${m.memoryGiB} GiB memory, ${m.cpu}, Node ${m.node};
load average at the end ${m.loadAverage} (a shared machine: other work ran at the same time).

## Engine (in process)

${
  engine
    ? `Decode (schema-checked) + arbitrate + evolve: **${engine.eventsPerSecond.toLocaleString("en")} events/s**, vs
${engine.limit}: ${engine.limitPerSecond.toLocaleString("en")} events/s — ratio **${engine.ratio}** (target ≥ ${engineTargetRatio}).${
        engine.microsPerEvent === undefined
          ? ""
          : ` Per event, each phase on its own: JSON.parse ${engine.microsPerEvent.parse} µs, the envelope's checks
${engine.microsPerEvent.check} µs, arbitration ${engine.microsPerEvent.arbitrate} µs, evolve ${engine.microsPerEvent.evolve} µs.`
      }`
    : "Not run."
}

## Raw hops (the limits)

Each emulator hop on its own, on a stream, topic, queues and table the bench creates for the
measurement and deletes after (the app's resources never see a raw record), driven by 4 lanes for
${o.rawSeconds} s each. The pipeline's limit is the slowest hop every event takes (marked "yes").

${
  r.rawHops
    ? rows(
        ["hop", "how", "every event", "per second", "call p50 ms", "call p99 ms"],
        Object.entries(r.rawHops).map(([k, h]) => [
          k,
          h.how,
          h.inPipeline ? "yes" : "no",
          `${h.perSecond} ${h.unit}`,
          h.callMs.p50,
          h.callMs.p99,
        ]),
      )
    : "Not run."
}

## Pipeline (end to end, local)

${
  pipeline
    ? `${pipeline.clients} closed-loop clients for ${pipeline.seconds} s over ${pipeline.accounts} accounts: ${pipeline.commandsPerSecond} commands/s,
**${pipeline.eventsPerSecond} events/s** (one event per deposit), command → view latency p50 **${atLeast(pipeline.latencyMs, "p50")} ms**,
p99 **${atLeast(pipeline.latencyMs, "p99")} ms** (POST to the balance view showing the deposit). Limit: ${pipeline.limit},
${pipeline.limitPerSecond}/s — ratio **${pipeline.ratio}**. The calls per event, Lambda time and cost below come from this run.`
    : "Not run."
}

## Under load

A client POSTs a deposit and waits until the balances view shows it (the bench watches the views
and outcomes for all clients at once, every ${o.pollMs} ms, reading the items the API serves with
its own uncounted client). Every run is bounded: ${o.stepSeconds} s of load, then at most ${o.drainSeconds} s
for the commands in flight; those still unfinished are counted, with their time so far in the
percentiles (a "≥" marks a figure that is then a lower bound). "Backlog" is earlier runs' commands
still in flight when a run started. Commands/s: the accepted commands shown in a window as long as
the run, opened at its first completion (completions trail sends by a latency, so counting from the
start would undercount a short run). Ratio: commands/s ÷ the pipeline's limit above.

### Scaling (closed loop)

${
  scaling
    ? `${scaling.accounts} accounts; with more clients than accounts, clients share accounts. "Watch / bench delay": the
watcher's achieved poll interval (the latencies' resolution) and the p99 event-loop delay of the bench's
process, which also serves the API (high: the bench itself added to the latencies).

${rows(
  ["clients", "commands/s", "p50 ms", "p99 ms", "sent", "unfinished", "backlog", "ratio", "watch / bench delay ms"],
  scaling.steps.map((s) => [
    s.clients,
    s.commandsPerSecond,
    atLeast(s.latencyMs, "p50"),
    atLeast(s.latencyMs, "p99"),
    s.sent,
    s.unfinished,
    s.backlogAtStart,
    s.ratio,
    `${s.pollEveryMs} / ${s.benchLoopDelayMs.p99}`,
  ]),
)}`
    : "Not run."
}

### Open loop (fixed offered rate)

${
  open
    ? `Arrivals ${open.arrivals === "poisson" ? "as a Poisson process" : "evenly spaced"} (seed ${open.seed}) at ${open.rate}/s (${open.offered} in ${open.seconds} s) over ${open.accounts} accounts, sent
on schedule whatever the answers (at most ${open.maxInFlight} in flight; arrivals beyond are shed and
counted); latency from each arrival's scheduled time, so queueing is not hidden (no coordinated
omission). The bench sent arrivals ${open.sendLagMs.p50} ms (p50) and at most ${open.sendLagMs.max} ms behind schedule; its
event-loop delay p99 was ${open.benchLoopDelayMs.p99} ms.

${rows(
  [
    "offered/s",
    "achieved/s",
    "achieved ÷ offered",
    "p50 ms",
    "p99 ms",
    "offered",
    "shed",
    "unfinished",
    "ratio to limit",
  ],
  [
    [
      open.offeredPerSecond,
      open.achievedPerSecond,
      open.achievedRatio,
      atLeast(open.latencyMs, "p50"),
      atLeast(open.latencyMs, "p99"),
      open.offered,
      open.shed,
      open.unfinished,
      open.ratio,
    ],
  ],
)}`
    : "Not run."
}

### Hot aggregate (one account)

${
  hot
    ? `${hot.clients} closed-loop clients on one account: **${hot.acceptedPerSecond} accepted/s**, p50 ${atLeast(hot.latencyMs, "p50")} ms,
p99 ${atLeast(hot.latencyMs, "p99")} ms (${hot.rejected} rejected, ${hot.conflicted} conflicted, ${hot.unfinished} unfinished). One aggregate's commands
go one after another (one FIFO message group); invariant 9 asks that it not be held to one full pipeline
round trip per command: ${hot.roundTripPerSecond ?? "–"}/s (1000 ÷ the 1-client p50) — ratio **${hot.roundTripRatio ?? "–"}**
(above 1: faster than a round trip per command); vs the pipeline's limit, ratio ${hot.ratio ?? "–"}.`
    : "Not run."
}

### Where the CPU goes, by run

CPU time per accepted command while each run lasted (its drain included), from \`process.threadCpuUsage\`
in the bench's main thread (which serves the API and runs the bench's clients and watcher) and in every
function's worker thread (its handler and its event source mapping's polling), and from
\`/proc/<pid>/stat\` for each emulator process (bench/cpu.ts). CPU time does not grow with the
machine's load as wall time does. "Ceiling": the commands/s the machine's cores could carry at that CPU
per command (cores × 1000 ÷ CPU ms); achieved ÷ ceiling near 1 means the cores are the limit.
${
  r.idleCpu
    ? `
Doing nothing (${r.idleCpu.seconds} s with no load, before the scaling runs) the system used **${r.idleCpu.totalMs} ms
of CPU a second** (${round(r.idleCpu.totalMs / 1000, 2)} of ${r.idleCpu.cores} cores): ${Object.entries(
        r.idleCpu.byPartMs,
      )
        .slice(0, 5)
        .map(([part, ms]) => `${part} ${ms}`)
        .join(", ")} (ms a second). A run's CPU per command includes its share of that.
`
    : ""
}
${
  cpuRuns.length > 0
    ? rows(
        [
          "run",
          "commands/s",
          "AWS calls/event",
          "CPU ms/command",
          "bench main · functions · emulators",
          "ceiling/s",
          "achieved ÷ ceiling",
          "largest parts (ms/command)",
        ],
        cpuRuns.map(({ name, s, calls, cpu }) => [
          name,
          s.commandsPerSecond,
          calls ?? "–",
          cpu.totalMs,
          `${cpu.benchMainMs} · ${cpu.functionsMs} · ${cpu.emulatorsMs}`,
          cpu.ceilingPerSecond,
          cpu.ceilingPerSecond > 0 ? round(s.commandsPerSecond / cpu.ceilingPerSecond, 2) : "–",
          Object.entries(cpu.byPartMs)
            .slice(0, 4)
            .map(([part, ms]) => `${part} ${ms}`)
            .join(", "),
        ]),
      )
    : "Not run."
}

### Where the time goes, by run

p50 / p99 ms of each part of the accepted commands, from what the system records: the API's
\`receivedAt\`, the stream record's ApproximateArrivalTimestamp (kept by the archive), the final
outcome's \`updatedAt\`, and the bench's own clock and view polls.

${
  loadRuns.length > 0 && loadRuns.some((l) => l.s.segmentsMs)
    ? rows(
        ["run", "sent → API received", "API received → appended", "appended → view shown", "appended → outcome"],
        loadRuns.map(({ name, s }) => [name, seg(s, 0), seg(s, 1), seg(s, 2), seg(s, 3)]),
      )
    : "Not run."
}

## Per-hop latency (traced commands)

${
  breakdown?.hopsMs
    ? `${breakdown.commands} deposits of ${breakdown.clients} closed-loop clients, each traced through the hops from the
timestamps the system keeps, its subscribers' tables polled every ${breakdown.pollMs} ms (${breakdown.probeEveryMs} ms between
polls as achieved: an applied time is the first poll that shows it, up to one poll late). For the relay's time the bench subscribes a tap queue of its own to the bus
topic for the trace (FundsDeposited only), one more subscriber like a projection.

${rows(
  ["from", "to", "p50 ms", "p99 ms", "commands", "timestamps"],
  breakdown.hopsMs.map((h) => [h.from, h.to, h.p50, h.p99, h.samples, h.source]),
)}

${
  breakdown.rawCallMs
    ? `Beside them, one raw call (p50 ms, same run): Kinesis PutRecord ${breakdown.rawCallMs.kinesisPutRecord?.p50}, SNS PublishBatch
into a subscribed FIFO queue ${breakdown.rawCallMs.snsPublishBatchToSqsFifo?.p50}, SQS FIFO send + receive + delete
${breakdown.rawCallMs.sqsFifoSendReceiveDelete?.p50}, DynamoDB conditional PutItem ${breakdown.rawCallMs.dynamodbConditionalPutItem?.p50}.`
    : ""
}

${breakdown.notTimed.map((n) => `Not timed: ${n.fn}, ${n.reason}.`).join(" ")}

Not timed without a change to the framework: when the command handler received the command from
its queue (the SQS record's \`ApproximateFirstReceiveTimestamp\` is seen only by the handler: it would
have to be kept, e.g. as \`queueReceivedAt\` in the pending outcome); the decision's time when the
pending outcome lasts less than a poll (the outcome is overwritten); the relay's own publish time (the
tap queue's SentTimestamp is SNS's delivery, a bound; a \`publishedAt\` message attribute would be
exact); and when a subscriber applied an event (items carry no time: an \`appliedAt\` on the item, or
the runner's receive time, would make the poll unnecessary).`
    : "Not run."
}

## Telemetry's cost (law K)

${
  r.telemetry
    ? `The same closed loop (${r.telemetry.clients} clients depositing and waiting for the view, ${r.telemetry.seconds} s a side) on a
system without its telemetry bus ("off": every emitter a no-op, no sink, no journey indexer) and on the bank as
declared ("on"), alternating, ${r.telemetry.sides.length / 2} rounds, in one run. Both sides share this machine's cores,
so "on" also pays for the analytics bus's own functions (the journey indexer and the local sink, which on AWS are
Firehose and a Lambda of their own): an upper bound of what the functions pay.

${rows(
  ["side", "commands/s", "p50 ms", "p99 ms", "CPU ms/command", "largest parts (ms/command)"],
  r.telemetry.sides.map((side) => [
    side.mode,
    side.commandsPerSecond,
    side.latencyP50Ms,
    side.latencyP99Ms,
    side.cpuMsPerCommand,
    Object.entries(side.cpuMsPerCommandByPart)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([part, ms]) => `${part} ${ms}`)
      .join(", "),
  ]),
)}

Throughput on ÷ off: **${round(r.telemetry.ratio, 3)}** (bound ≥ 0.95); CPU per command off ÷ on (what a saturated
machine's throughput follows): **${round(r.telemetry.cpuRatio, 3)}**; the
analytics bus's own functions: ${r.telemetry.telemetryFunctionsCpuMsPerCommand} ms a command.${
        r.telemetry.emit
          ? ` Emitting alone, in process (what each function pays on AWS besides one PutRecords a second):
${r.telemetry.emit.microsecondsPerCommand} µs of CPU a command for its ${r.telemetry.emit.recordsPerCommand} records.`
          : ""
      }

How to read it: a side is ${r.telemetry.seconds} s of about ${Math.round(r.telemetry.sides.reduce((s, x) => s + x.accepted, 0) / Math.max(1, r.telemetry.sides.length))} commands, and on this machine two identical sides
differ by up to a quarter in both figures (compare the off rows), so one pair's ratio is within that noise: three
runs of this section on 2026-12-02 gave 0.977, 1.041 and the figure above. What does not move with the noise: the
emitting itself (the µs above, about 0.4% of a command's CPU) and the CPU of the analytics bus's own functions. At
saturation they matter here: the open loop at 100/s offered, in the same hour on the same commit, achieved 51 and
45/s with telemetry and 70/s without the analytics bus (functions/app.ts minus the bus; 77/s before issue 17),
because the journey index's writes and the Parquet sink share these two cores and the single-threaded DynamoDB
emulator with the pipeline. On AWS they are Firehose and a Lambda and table of their own, and the command's path
pays only the emitting.`
    : "Not run."
}

## Replay (archive → DynamoDB)

${
  r.replay
    ? `An archive of ${r.replay.events.toLocaleString("en")} account events over ${r.replay.aggregates.toLocaleString("en")} accounts
(${r.replay.archive.records.toLocaleString("en")} records with retried duplicates and lost races, ${r.replay.archive.objects} objects,
${r.replay.archive.mb} MB gzip), written straight in the archive's layout (bench/archive-generator.ts), replayed into a
fresh balances table by a process of its own (bench/replay-scale.ts): **${r.replay.eventsPerSecond} events/s**
(${r.replay.seconds} s), vs ${r.replay.limit}: ${r.replay.limitPerSecond} items/s — ratio **${r.replay.ratio}**; peak RSS
**${r.replay.peakRssMb} MB**. Killed with SIGKILL at its first checkpoint (${r.replay.resume.killedAfterEvents} events) and run
again, it resumed there and finished in ${r.replay.resume.seconds} s. Both tables ${r.replay.equal ? "equal" : "**do not equal**"}
the fold of the generated history, item by item.`
    : "Not run."
}

## Warm-up handover at scale, under live traffic

${
  r.handover
    ? `The running system's core archive was given ${r.handover.archivedEvents.toLocaleString("en")} more account events
(bench/handover.ts, on shards of their own), then \`accounts.activity\` (declared \`warmUp: true\`) was warmed up while
4 clients deposited into ${r.handover.liveAccounts} live accounts: ${r.handover.replayedEvents.toLocaleString("en")} events replayed in
${r.handover.replaySeconds} s, ${r.handover.liveDeposits} live deposits (${r.handover.duringReplay} during the replay). Its view
${r.handover.equal ? "**equals**" : `**is off on ${r.handover.mismatches} items**`} the fold of every accepted event, item by item: no gap, no
double apply.`
    : "Not run."
}

## Lambda bundles

${
  r.lambda
    ? `esbuild as \`infra/canon-function.ts\` bundles (the settings of \`infra/bundling.ts\`: ESM, node, \`@aws-sdk/*\`
external, minified; bench/bundles.ts). Init = median time to \`import()\` the bundle in a fresh Node process, in the
same rounds as two baselines: an empty module (${r.lambda.emptyModuleInitMs} ms) and a minimal handler that imports one
SDK client and makes it (${r.lambda.minimalSdkInitMs} ms; CPU ${r.lambda.minimalSdkInitCpuMs} ms). Each bundle is built with its source map
and imported under the deployed NODE_OPTIONS (\`--enable-source-maps\`). Init includes loading the external \`@aws-sdk/*\` packages
the function imports from node_modules, as the Lambda runtime loads its own; AWS's Init Duration adds the runtime's
own start to both. Targets: ≤ ${r.lambda.targets.kib} KiB (${r.lambda.targets.consumerRoles.join(", ")}: ≤ ${r.lambda.targets.consumerKib} KiB), init ≤ ${r.lambda.targets.initRatio}× the minimal SDK handler.

${rows(
  [
    "function",
    "bundle KiB",
    "target KiB",
    "init ms",
    "init ÷ minimal SDK handler",
    "init CPU ms",
    "CPU ÷ minimal SDK handler's",
  ],
  r.lambda.functions.map((f) => [
    f.function,
    f.kib,
    f.kibTarget,
    f.initMs ?? `failed: ${f.error}`,
    f.initSdkRatio,
    f.initCpuMs,
    f.initCpuSdkRatio,
  ]),
)}

The largest inputs of each bundle (KiB in the output) and the imports that pulled each in:

${r.lambda.functions
  .map(
    (f) =>
      `- **${f.function}**: ${f.largest.map((i) => `${i.name} ${i.kib} (from ${i.via.slice(1, -1).join(" → ") || "the handler"})`).join("; ")}`,
  )
  .join("\n")}`
    : "Not run."
}

## Lambda time per event

${
  r.lambdaTime
    ? `Each function's billed duration in the pipeline run: the wall time of every handler call, waits included
(the command handler's wait for its commit to show is billed), timed by wrapping each handler module
(bench/lambda-time.ts: the bench starts the system from a shadow root whose modules re-export the real
ones with \`handler\` timed). The API's: one invocation per command, lasting its POST as the bench saw it.
In all **${r.lambdaTime.msPerEvent} ms of Lambda per event**${
        r.lambdaTime.commitWaitMsPerCommand === undefined
          ? ""
          : `; of the command handler's, on average ${r.lambdaTime.commitWaitMsPerCommand} ms per command
pass between its append (the record's ApproximateArrivalTimestamp) and its final outcome: its wait for
the commit to show in its own state`
      }.

${rows(
  ["function", "invocations/event", "records/invocation", "ms/invocation", "ms/event"],
  r.lambdaTime.functions.map((f) => [
    f.function,
    f.invocationsPerEvent,
    f.recordsPerInvocation,
    f.msPerInvocation,
    f.msPerEvent,
  ]),
)}`
    : "Not run."
}

## AWS calls per event, by hop

${
  r.awsCallsPerEvent
    ? `Counted by an SDK middleware (shared/aws/call-counter.ts, on only when \`CANON_COUNT_AWS_CALLS\` is
set) in every function's worker during the pipeline run, divided by the events. The local runner's
own polling is counted with its function (as the event source mapping's); the bench's own reads are
not counted. Floor: the sum over the operations a hop makes of 1 ÷ the most items one call can carry
(10 for single-item calls, one per SQS batch) — what full batching would cost.

${hopCallsTable(r.awsCallsPerEvent)}

${
  open?.awsCallsByHop
    ? `At the open loop's offered rate (${open.offeredPerSecond}/s offered, ${open.achievedPerSecond}/s achieved; the
targets' condition), counted the same way:

${hopCallsTable(open.awsCallsByHop)}`
    : ""
}`
    : "Not run."
}

## Cost

${
  cost
    ? `Dollars per million events for the default topology at ${cost.asMeasured.ratePerSecond} events/s, from the list
prices in [bench/prices.json](../bench/prices.json) (dated ${cost.asMeasured.pricesDated}; list prices, to be checked):
**$${cost.asMeasured.dollarsPerMillionEvents}** with the calls, invocations and Lambda time per event measured here (at
${cost.measuredAtEventsPerSecond} events/s, where batches are nearly empty), and **$${cost.fullyBatched.dollarsPerMillionEvents}**
if every call and invocation carried a full batch (the floor above). At a steady ${cost.asMeasured.ratePerSecond} events/s batches
fill, so the real figure lies between the two.

${rows(
  ["item", "as measured $/M", "fully batched $/M"],
  Object.entries(cost.asMeasured.breakdown).map(([k, v]) => [
    k,
    v,
    (cost.fullyBatched.breakdown as Record<string, number>)[k],
  ]),
)}

Assumptions: ${cost.asMeasured.assumptions.join("; ")}. Fully batched: ${cost.fullyBatched.assumptions[3]}. The API's view
reads are not in the model (they depend on the clients, not on the events).`
    : "Not run."
}

## Proof under faults (not timed)

\`npm run soak -- --seconds N [--seed S] [--accounts K] [--clients C] [--sdk-faults P]\` (bench/soak.ts)
runs the bank under load with seeded faults: duplicates, crashes after partial work, replays and delayed
redeliveries in every consumer (\`CANON_FAULTS\`), throttles, timeouts and connection resets at the AWS
SDK in every function and the API (P per call attempt, default 0.02; the SDK retries them as it retries
real ones, and a timeout or reset comes after the request was carried out, so the code meets its own
write twice), a restart of dynalite and of fauxqs under load, a kill -9 of the Kinesis emulator under
load, poison records on the stream and a poison event. Then the oracle (bench/oracle.ts):
money conserved (balances equal opening deposits plus accepted deposits minus accepted withdrawals),
no negative balance, every transfer COMPLETED or FAILED, every view equal to the fold of the archive,
\`canon archive verify\` green, the poison records in the relay's dead-letter queue with their reason
and the poison event parked with its reason in every projection it reaches — and nothing else
dead-lettered or parked. Its last line is \`oracle: ok ops=… faults=… seed=…\`; the same seed gives the
same fault schedule. A 15 s soak is part of \`npm test\` (test/integration/soak.test.ts).

\`npm run soak -- --crash N\` (bench/crash-soak.ts) kills the whole \`canon dev\` process group (functions,
API, every emulator) with SIGKILL N times at seeded moments under load and starts it again on the same
data; clients resend what got no answer under the same Idempotency-Key. Then the oracle, plus: every
command acknowledged ends (none pending) and every one seen accepted is still accepted. A 2-crash run is
part of \`npm test\` (test/integration/soak.test.ts, after the other soak). The emulators keep what they acknowledged
across a kill: kinesalite and dynalite write LevelDB's log before answering, fauxqs commits SQLite (WAL)
before answering (docs/local-cloud.md).

Fuzzing (fast-check, seeded, bounded): test/fuzz/api.fuzz.test.ts sends hostile requests over the wire
(every answer a 2xx or a 4xx with a JSON \`error\`, never a 5xx); test/fuzz/handlers.fuzz.test.ts calls
the relay, a projection and a command handler with garbage batches around one valid record.

## Reading these numbers

- Local throughput is bound by the emulators and two shared cores, not by AWS: on AWS each hop scales
  by shards, message groups and concurrency; use the ratios, not the absolute figures.
- The pipeline's latency includes the emulators' own call times (see the raw hops), the runner's
  Kinesis reads (an append wakes the stream's readers in the same process at once; otherwise every
  100 ms, and less often for an idle shard, to a second) and, for the outcome, the command handler's
  read-your-writes wait for its own state projection (its BatchGetItem calls per event above).
- On AWS the hops cost other times (Lambda polls a Kinesis shard about once a second, enhanced fan-out
  pushes in ~70 ms): docs/aws-capacity.md has the budget per hop and the ceilings.
- The API, the bench's clients and its watcher share one Node process: under heavy load the bench's
  own event loop adds to the latencies (the open loop reports how late it sent).
- \`npm run bench -- --help\` lists the sizes and \`--only\`; with the defaults the whole run takes a few
  minutes, and each run stays bounded however slow the pipeline is.
`;
}

if (import.meta.main) {
  await main().catch((error: unknown) => {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench: ${error.message}\n\n${usage}`);
    process.exit(2);
  });
}
