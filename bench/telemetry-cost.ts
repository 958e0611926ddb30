/**
 * What telemetry costs the hot path (law K, issue 17): the same closed loop of deposits through
 * the API (clients waiting for the view to show each) with the analytics bus and without it, in
 * one run on one machine, alternating so that a drift of the machine falls on both sides. Off is
 * the bank without its telemetry bus (no stream, so every emitter is a no-op, and no sink or
 * journey indexer); on is the bank as declared. Locally both sides share the same two cores, so
 * "on" pays for the sink and the indexer too: an upper bound of what the functions pay on AWS.
 *
 *   node bench/telemetry-cost.ts [--clients 8] [--seconds 10] [--rounds 1] [--sides off,on,unpacked] [--emit-only]
 *
 * It also measures the emitting alone, in process (`measureEmitCost`): the CPU the functions
 * spend per command on telemetry, which does not depend on the emulators or on a busy machine.
 *
 * `measureTelemetryCost` and `measureEmitCost` are what bench/run.ts calls.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type { SQSRecord } from "aws-lambda";
import { app } from "../functions/app.ts";
import { contractsOf } from "../shared/domain/commands.ts";
import { type DevSystem, startDev } from "../shared/local-cloud/dev.ts";
import { envNames, planApp } from "../shared/plan.ts";
import { CommandHops, commitTraceparent } from "../shared/telemetry/command-hops.ts";
import { createEmitter, recordsPerEntryEnv, telemetry, useEmitter } from "../shared/telemetry/emitter.ts";
import { hopSpan } from "../shared/telemetry/spans.ts";
import { recordApplied } from "../shared/telemetry/subscriber-hops.ts";
import {
  formatTraceparent,
  parseTraceparent,
  startTrace,
  type TraceContext,
} from "../shared/telemetry/trace-context.ts";
import type { AppDefinition } from "../shared/topology.ts";
import { type BenchAws, benchAws } from "./aws.ts";
import { lambdaTimesEnv, readLambdaTimes, writeShadowRoot } from "./lambda-time.ts";
import { closedLoop, ensureOpen, type LoadContext, type RunStats, Tracker } from "./load.ts";

export interface TelemetryCostOptions {
  readonly repoRoot: string;
  /** @default 8 */
  readonly clients?: number;
  /** Seconds of each side's closed loop. @default 10 */
  readonly seconds?: number;
  /** Off/on pairs. @default 1 */
  readonly rounds?: number;
  /** @default 20 */
  readonly drainSeconds?: number;
  /** @default 25 */
  readonly pollMs?: number;
  /** Which sides to run, in this order each round. @default ["off", "on"] */
  readonly sides?: readonly TelemetryMode[];
  readonly log?: (line: string) => void;
}

/**
 * "off": no telemetry bus; "on": the bank as declared (records packed 500 a stream record, the
 * emitter's default); "unpacked": one telemetry record a stream record (recordsPerEntryEnv = 1).
 */
export type TelemetryMode = "off" | "on" | "unpacked";

/** One side's closed loop. */
export interface TelemetrySide {
  readonly mode: TelemetryMode;
  /**
   * CPU ms per accepted command, over the loop: this process (API, functions, clients) and the
   * emulators it started. Unlike commands/s, it hardly depends on what else loads the machine.
   */
  readonly cpuMsPerCommand: number;
  readonly cpuMsPerCommandByPart: Readonly<Record<string, number>>;
  readonly commandsPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly accepted: number;
  readonly unfinished: number;
}

export interface TelemetryCostFigures {
  readonly clients: number;
  readonly seconds: number;
  readonly sides: readonly TelemetrySide[];
  /** Mean commands/s of each mode run. */
  readonly commandsPerSecond: Partial<Record<TelemetryMode, number>>;
  /** Mean CPU ms per command of each mode run. */
  readonly cpuMsPerCommand: Partial<Record<TelemetryMode, number>>;
  /** off CPU / on CPU per command: the throughput ratio a saturated machine would see. */
  readonly cpuRatio: number;
  /**
   * CPU ms a command of the functions only telemetry runs (the journey indexer, the local sink:
   * the telemetry bus's `<bus>-…` functions), on the "on" sides: the part of the cost that does not
   * move with the noise of a shared machine (their emulators' share comes on top).
   */
  readonly telemetryFunctionsCpuMsPerCommand: number;
  /** on / off: 1 = free; the issue's bound is ≥ 0.95. */
  readonly ratio: number;
  /** unpacked / off, when both ran. */
  readonly unpackedRatio?: number;
}

/** The bank without its telemetry bus: every emitter off. */
function withoutTelemetry(definition: AppDefinition): AppDefinition {
  return { ...definition, buses: definition.buses.filter((b) => b.kind !== "telemetry") };
}

/** Runs off and on, `rounds` times each, alternating, and compares their throughput. */
export async function measureTelemetryCost(options: TelemetryCostOptions): Promise<TelemetryCostFigures> {
  const clients = options.clients ?? 8;
  const seconds = options.seconds ?? 10;
  const rounds = options.rounds ?? 1;
  const log = options.log ?? ((line: string) => console.log(line));
  const sides: TelemetrySide[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const mode of options.sides ?? ["off", "on"]) {
      log(`bench: telemetry ${mode}, ${clients} clients for ${seconds} s …`);
      const { stats, cpu } = await runSide(options, mode, clients, seconds);
      const perCommand = (ms: number) => Math.round((ms / Math.max(1, stats.accepted)) * 100) / 100;
      const side: TelemetrySide = {
        mode,
        cpuMsPerCommand: perCommand(Object.values(cpu).reduce((a, b) => a + b, 0)),
        cpuMsPerCommandByPart: Object.fromEntries(Object.entries(cpu).map(([part, ms]) => [part, perCommand(ms)])),
        commandsPerSecond: stats.commandsPerSecond,
        latencyP50Ms: stats.latencyMs.p50,
        latencyP99Ms: stats.latencyMs.p99,
        accepted: stats.accepted,
        unfinished: stats.unfinished,
      };
      log(
        `bench: telemetry ${mode}: ${side.commandsPerSecond.toFixed(1)} cmd/s, ` +
          `sent → view p50 ${side.latencyP50Ms} ms, p99 ${side.latencyP99Ms} ms; ` +
          `CPU ${side.cpuMsPerCommand} ms a command (${Object.entries(side.cpuMsPerCommandByPart)
            .map(([part, ms]) => `${part} ${ms}`)
            .join(", ")})`,
      );
      sides.push(side);
    }
  }
  const commandsPerSecond: Partial<Record<TelemetryMode, number>> = {};
  const cpuMsPerCommand: Partial<Record<TelemetryMode, number>> = {};
  for (const mode of ["off", "on", "unpacked"] as const) {
    const mine = sides.filter((s) => s.mode === mode);
    if (mine.length === 0) continue;
    commandsPerSecond[mode] = mine.reduce((sum, s) => sum + s.commandsPerSecond, 0) / mine.length;
    cpuMsPerCommand[mode] = mine.reduce((sum, s) => sum + s.cpuMsPerCommand, 0) / mine.length;
  }
  const telemetryBuses = app.buses.filter((b) => b.kind === "telemetry").map((b) => `${b.name}-`);
  const onSides = sides.filter((s) => s.mode === "on");
  const telemetryFunctionsCpuMsPerCommand =
    onSides.reduce(
      (sum, s) =>
        sum +
        Object.entries(s.cpuMsPerCommandByPart)
          .filter(([part]) => telemetryBuses.some((prefix) => part.startsWith(prefix)))
          .reduce((a, [, ms]) => a + ms, 0),
      0,
    ) / Math.max(1, onSides.length);
  const cpuOff = cpuMsPerCommand.off;
  const cpuOn = cpuMsPerCommand.on;
  const ratioTo = (mode: TelemetryMode) => {
    const off = commandsPerSecond.off ?? 0;
    const other = commandsPerSecond[mode];
    return other === undefined || off === 0 ? undefined : other / off;
  };
  const figures: TelemetryCostFigures = {
    clients,
    seconds,
    sides,
    commandsPerSecond,
    cpuMsPerCommand,
    cpuRatio: cpuOff !== undefined && cpuOn ? cpuOff / cpuOn : 0,
    telemetryFunctionsCpuMsPerCommand: Math.round(telemetryFunctionsCpuMsPerCommand * 100) / 100,
    ratio: ratioTo("on") ?? 0,
    ...(ratioTo("unpacked") === undefined ? {} : { unpackedRatio: ratioTo("unpacked") }),
  };
  const shown = Object.entries(commandsPerSecond).map(([mode, cps]) => `${mode} ${cps.toFixed(1)} cmd/s`);
  log(
    `bench: telemetry cost: ${shown.join(", ")}; on/off ${figures.ratio.toFixed(3)}; ` +
      `CPU a command off/on ${figures.cpuRatio.toFixed(3)}; the telemetry bus's own functions ` +
      `${figures.telemetryFunctionsCpuMsPerCommand} ms a command` +
      `${figures.unpackedRatio === undefined ? "" : `, unpacked/off ${figures.unpackedRatio.toFixed(3)}`} (bound ≥ 0.95)`,
  );
  return figures;
}

/** What emitting costs per command, in the functions' own CPU (no emulator, no network). */
export interface EmitCostFigures {
  readonly commands: number;
  /** Telemetry records one command makes (API, command handler, relay, four projections). */
  readonly recordsPerCommand: number;
  /** CPU (user + system) per command, building, buffering, serializing and packing its records, µs. */
  readonly microsecondsPerCommand: number;
  /** The same with one telemetry record a stream record, µs. */
  readonly unpackedMicrosecondsPerCommand: number;
}

/**
 * The emitting itself, measured in process: every record a deposit makes on its way (the API's
 * request and "accepted", the command handler's hops and outcome, the relay's "relayed", four
 * projections' "applied" and "apply"), through the real code paths into an emitter whose put
 * keeps nothing. This is what the functions pay on AWS besides one PutRecords a second each.
 */
export async function measureEmitCost(commands = 20_000): Promise<EmitCostFigures> {
  const run = async (recordsPerEntry: number) => {
    let records = 0;
    const emitter = createEmitter({
      streamName: "bench",
      timer: false,
      recordsPerEntry,
      put: async (_stream, entries) => {
        records += entries.length;
        return 0;
      },
    });
    useEmitter(emitter);
    try {
      const started = process.cpuUsage();
      for (let n = 0; n < commands; n++) await oneCommand(n);
      await emitter.flush();
      const used = process.cpuUsage(started);
      return { us: (used.user + used.system) / commands, emitted: emitter.stats().emitted / commands, records };
    } finally {
      useEmitter(undefined);
    }
  };
  await run(500); // warm up
  const packed = await run(500);
  const single = await run(1);
  return {
    commands,
    recordsPerCommand: packed.emitted,
    microsecondsPerCommand: Math.round(packed.us * 10) / 10,
    unpackedMicrosecondsPerCommand: Math.round(single.us * 10) / 10,
  };
}

/** The telemetry of one deposit, as each function makes it. */
async function oneCommand(n: number): Promise<void> {
  const emitter = telemetry();
  const now = Date.now();
  const api = startTrace();
  const commandId = `c-${n}`;
  const owner = { commandId, correlationId: commandId, aggregateId: `a-${n % 64}` };
  emitter.emit({
    kind: "request",
    source: "api",
    traceId: api.traceId,
    spanId: api.spanId,
    request: { method: "POST", route: "/commands/:service/:command", status: 202, latencyMs: 3.2 },
  });
  const accepted = hopSpan({ source: "api", name: "accepted", parent: api, owner, startedAt: now, endedAt: now + 3 });
  emitter.emit(accepted.record);
  const message = {
    ...owner,
    service: "accounts",
    command: { type: "Deposit", accountId: owner.aggregateId, amountCents: 5 },
    receivedAt: new Date(now).toISOString(),
    causationId: commandId,
    traceparent: formatTraceparent(accepted.context),
  };
  const hops = new CommandHops("accounts-command-handler", now + 10);
  hops.queued({ attributes: { SentTimestamp: String(now + 4) } } as unknown as SQSRecord, message);
  const times = { startedAt: now + 10, decidedAt: now + 12, appendStartedAt: now + 13, appendedAt: now + 20 };
  hops.round(message, 1, times, true);
  hops.outcome(message, "accepted", 1, times);
  const traceparent = commitTraceparent(message, 1) as string;
  const relayed = hopSpan({
    source: "core-relay",
    name: "relayed",
    parent: parseTraceparent(traceparent) as TraceContext,
    owner,
    startedAt: now + 21,
    endedAt: now + 30,
    key: `${commandId}.1`,
  });
  emitter.emit(relayed.record);
  const body = JSON.stringify({
    specversion: "1.0",
    id: `${commandId}.1.0`,
    type: "FundsDeposited",
    time: message.receivedAt,
    subject: owner.aggregateId,
    aggregateversion: n,
    commitid: `${commandId}.1`,
    commandid: commandId,
    correlationid: commandId,
    traceparent,
    data: { accountId: owner.aggregateId, amountCents: 5 },
  });
  const record = {
    messageId: `m-${n}`,
    body,
    eventSourceARN: "arn:aws:sqs:local:000000000000:accounts-balances",
    attributes: { SentTimestamp: String(now + 31) },
    messageAttributes: { traceparent: { stringValue: formatTraceparent(relayed.context), dataType: "String" } },
  } as unknown as SQSRecord;
  for (const projection of ["accounts.state", "accounts.balances", "accounts.daily-totals", "statements.history"])
    recordApplied(projection, [record], { batchItemFailures: [] }, now + 32);
}

/**
 * CPU ms so far: each function's thread (from the timing files in `timesDir`), the rest of this
 * process (the API, the clients, their watcher), and each emulator child by name.
 */
function cpuNow(timesDir: string): Map<string, number> {
  const own = process.cpuUsage();
  const functions = [...readLambdaTimes(timesDir)].map(([who, t]) => [who, t.cpuMs ?? 0] as const);
  const inFunctions = functions.reduce((sum, [, ms]) => sum + ms, 0);
  const out = new Map<string, number>([["api+bench", (own.user + own.system) / 1000 - inFunctions], ...functions]);
  for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) !== process.pid) continue; // another system's emulators are not ours
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const host = args.findIndex((arg) => arg.endsWith("emulator-host.ts"));
      if (host < 0) continue;
      const name = args[host + 1] ?? "emulator";
      // utime and stime, in clock ticks (USER_HZ, 100 a second).
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** A fresh system (telemetry on or off), its accounts opened, one closed loop, stopped. */
async function runSide(
  options: TelemetryCostOptions,
  mode: TelemetryMode,
  clients: number,
  seconds: number,
): Promise<{ stats: RunStats; cpu: Record<string, number> }> {
  const definition = mode === "off" ? withoutTelemetry(app) : app;
  // The API runs in this process, and the functions inherit its environment: a side must not
  // inherit the last side's settings.
  delete process.env[envNames.telemetryStream];
  delete process.env[envNames.journeyTable];
  if (mode === "unpacked") process.env[recordsPerEntryEnv] = "1";
  else delete process.env[recordsPerEntryEnv];
  const dataDir = mkdtempSync(join(tmpdir(), "canon-bench-telemetry-"));
  // Each function's CPU, through the bench's timing wrapper (bench/lambda-time.ts).
  const timesDir = join(dataDir, "lambda-times");
  process.env[lambdaTimesEnv] = timesDir;
  const plan = planApp(definition);
  const shadow = writeShadowRoot(options.repoRoot, plan, dataDir);
  let system: DevSystem | undefined;
  let aws: BenchAws | undefined;
  let tracker: Tracker | undefined;
  try {
    system = await startDev({
      app: definition,
      contracts: contractsOf(definition),
      repoRoot: shadow,
      dataDir,
      port: 0,
    });
    aws = benchAws();
    tracker = new Tracker(
      aws,
      {
        outcomes: process.env[envNames.serviceOutcomesTable("accounts")] as string,
        balances: process.env[envNames.viewTable("accounts", "balances")] as string,
      },
      options.pollMs ?? 25,
    );
    tracker.start();
    const ctx: LoadContext = { url: system.url, tracker, runId: randomUUID().slice(0, 8), opened: new Set() };
    const accounts = Array.from({ length: clients * 2 }, (_, i) => `tc-${i}`);
    await ensureOpen(ctx, accounts);
    await sleep(1_500); // the openings settle everywhere before counting starts
    let before = cpuNow(timesDir);
    const stats = await closedLoop(ctx, {
      run: `telemetry-${mode}`,
      clients,
      accounts,
      seconds,
      drainSeconds: options.drainSeconds ?? 20,
      onStart: () => {
        before = cpuNow(timesDir);
      },
    });
    const after = cpuNow(timesDir);
    const cpu: Record<string, number> = {};
    for (const [part, ms] of after) cpu[part] = ms - (before.get(part) ?? 0);
    return { stats, cpu };
  } finally {
    await tracker?.stop();
    aws?.destroy();
    await system?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      clients: { type: "string", default: "8" },
      seconds: { type: "string", default: "10" },
      rounds: { type: "string", default: "1" },
      sides: { type: "string", default: "off,on" },
      "emit-only": { type: "boolean", default: false },
    },
  });
  const emit = await measureEmitCost();
  console.log(
    `bench: emitting costs ${emit.microsecondsPerCommand} µs of CPU per command (${emit.recordsPerCommand} records), ` +
      `${emit.unpackedMicrosecondsPerCommand} µs unpacked`,
  );
  if (values["emit-only"]) process.exit(0);
  const figures = await measureTelemetryCost({
    repoRoot: resolve(import.meta.dirname, ".."),
    clients: Number(values.clients),
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    sides: values.sides.split(",") as TelemetryMode[],
  });
  console.log(JSON.stringify(figures, null, 2));
  process.exit(0);
}
