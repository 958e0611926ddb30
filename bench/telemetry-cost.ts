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
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type { SQSRecord } from "aws-lambda";
import { app } from "../functions/app.ts";
import { contractsOf } from "../shared/domain/commands.ts";
import { type DevSystem, startDev } from "../shared/local-cloud/dev.ts";
import { envNames } from "../shared/plan.ts";
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
      const stats = await runSide(options, mode, clients, seconds);
      const side: TelemetrySide = {
        mode,
        commandsPerSecond: stats.commandsPerSecond,
        latencyP50Ms: stats.latencyMs.p50,
        latencyP99Ms: stats.latencyMs.p99,
        accepted: stats.accepted,
        unfinished: stats.unfinished,
      };
      log(
        `bench: telemetry ${mode}: ${side.commandsPerSecond.toFixed(1)} cmd/s, ` +
          `sent → view p50 ${side.latencyP50Ms} ms, p99 ${side.latencyP99Ms} ms`,
      );
      sides.push(side);
    }
  }
  const commandsPerSecond: Partial<Record<TelemetryMode, number>> = {};
  for (const mode of ["off", "on", "unpacked"] as const) {
    const mine = sides.filter((s) => s.mode === mode);
    if (mine.length > 0) commandsPerSecond[mode] = mine.reduce((sum, s) => sum + s.commandsPerSecond, 0) / mine.length;
  }
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
    ratio: ratioTo("on") ?? 0,
    ...(ratioTo("unpacked") === undefined ? {} : { unpackedRatio: ratioTo("unpacked") }),
  };
  const shown = Object.entries(commandsPerSecond).map(([mode, cps]) => `${mode} ${cps.toFixed(1)} cmd/s`);
  log(
    `bench: telemetry cost: ${shown.join(", ")}; on/off ${figures.ratio.toFixed(3)}` +
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

/** A fresh system (telemetry on or off), its accounts opened, one closed loop, stopped. */
async function runSide(
  options: TelemetryCostOptions,
  mode: TelemetryMode,
  clients: number,
  seconds: number,
): Promise<RunStats> {
  const definition = mode === "off" ? withoutTelemetry(app) : app;
  // The API runs in this process, and the functions inherit its environment: a side must not
  // inherit the last side's settings.
  delete process.env[envNames.telemetryStream];
  delete process.env[envNames.journeyTable];
  if (mode === "unpacked") process.env[recordsPerEntryEnv] = "1";
  else delete process.env[recordsPerEntryEnv];
  const dataDir = mkdtempSync(join(tmpdir(), "canon-bench-telemetry-"));
  let system: DevSystem | undefined;
  let aws: BenchAws | undefined;
  let tracker: Tracker | undefined;
  try {
    system = await startDev({
      app: definition,
      contracts: contractsOf(definition),
      repoRoot: options.repoRoot,
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
    return await closedLoop(ctx, {
      run: `telemetry-${mode}`,
      clients,
      accounts,
      seconds,
      drainSeconds: options.drainSeconds ?? 20,
    });
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
