/**
 * What telemetry costs the hot path (law K, issue 17): the same closed loop of deposits through
 * the API (clients waiting for the view to show each) with the analytics bus and without it, in
 * one run on one machine, alternating so that a drift of the machine falls on both sides. Off is
 * the bank without its telemetry bus (no stream, so every emitter is a no-op, and no sink or
 * journey indexer); on is the bank as declared. Locally both sides share the same two cores, so
 * "on" pays for the sink and the indexer too: an upper bound of what the functions pay on AWS.
 *
 *   node bench/telemetry-cost.ts [--clients 8] [--seconds 10] [--rounds 1] [--sides off,on]
 *
 * `measureTelemetryCost` is what bench/run.ts calls.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { app } from "../functions/app.ts";
import { contractsOf } from "../shared/domain/commands.ts";
import { type DevSystem, startDev } from "../shared/local-cloud/dev.ts";
import { envNames } from "../shared/plan.ts";
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
  /** Which sides to run. @default both */
  readonly sides?: readonly ("off" | "on")[];
  readonly log?: (line: string) => void;
}

/** One side's closed loop. */
export interface TelemetrySide {
  readonly telemetry: boolean;
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
  /** Mean commands/s of each side. */
  readonly offCommandsPerSecond: number;
  readonly onCommandsPerSecond: number;
  /** on / off: 1 = free; the bound is ≥ 0.95. */
  readonly ratio: number;
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
    for (const telemetry of [false, true]) {
      if (options.sides !== undefined && !options.sides.includes(telemetry ? "on" : "off")) continue;
      log(`bench: telemetry ${telemetry ? "on" : "off"}, ${clients} clients for ${seconds} s …`);
      const stats = await runSide(options, telemetry, clients, seconds);
      const side: TelemetrySide = {
        telemetry,
        commandsPerSecond: stats.commandsPerSecond,
        latencyP50Ms: stats.latencyMs.p50,
        latencyP99Ms: stats.latencyMs.p99,
        accepted: stats.accepted,
        unfinished: stats.unfinished,
      };
      log(
        `bench: telemetry ${telemetry ? "on " : "off"}: ${side.commandsPerSecond.toFixed(1)} cmd/s, ` +
          `sent → view p50 ${side.latencyP50Ms} ms, p99 ${side.latencyP99Ms} ms`,
      );
      sides.push(side);
    }
  }
  const mean = (on: boolean) => {
    const mine = sides.filter((s) => s.telemetry === on);
    return mine.reduce((sum, s) => sum + s.commandsPerSecond, 0) / Math.max(1, mine.length);
  };
  const off = mean(false);
  const on = mean(true);
  const figures = {
    clients,
    seconds,
    sides,
    offCommandsPerSecond: off,
    onCommandsPerSecond: on,
    ratio: off > 0 ? on / off : 0,
  };
  log(
    `bench: telemetry cost: off ${off.toFixed(1)} cmd/s, on ${on.toFixed(1)} cmd/s, ratio ${figures.ratio.toFixed(3)} ` +
      `(bound ≥ 0.95)`,
  );
  return figures;
}

/** A fresh system (telemetry on or off), its accounts opened, one closed loop, stopped. */
async function runSide(
  options: TelemetryCostOptions,
  telemetry: boolean,
  clients: number,
  seconds: number,
): Promise<RunStats> {
  const definition = telemetry ? app : withoutTelemetry(app);
  // The API runs in this process: a side without telemetry must not inherit the last side's.
  delete process.env[envNames.telemetryStream];
  delete process.env[envNames.journeyTable];
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
      run: `telemetry-${telemetry ? "on" : "off"}`,
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
    },
  });
  const figures = await measureTelemetryCost({
    repoRoot: resolve(import.meta.dirname, ".."),
    clients: Number(values.clients),
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    sides: values.sides.split(",") as ("off" | "on")[],
  });
  console.log(JSON.stringify(figures, null, 2));
  process.exit(0);
}
