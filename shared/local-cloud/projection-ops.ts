/**
 * Growing and regrowing projections from the archive, locally (laws G, H, I):
 *
 * - warm-up: a projection declared with `warmUp: true` has its queue subscribed (it buffers)
 *   but no consumer. Replay the archive until it has passed the moment of subscription, then
 *   attach the consumer, which drains the buffer; the overlap is absorbed by idempotency.
 * - rebuild (blue/green): a new table beside the old one, filled from the archive while the
 *   consumer still keeps the old one; then the consumer pauses (its queue buffers), the archive
 *   is replayed again past the moment of the pause, the consumer resumes on the new table, reads
 *   switch to it, and the old table is retired. The old table answers reads throughout (falling
 *   behind only while paused). A consumer must not write the new table before the replay has
 *   caught it up: its items would be ahead of the older events, which would then be skipped.
 */

import { setTimeout as sleep } from "node:timers/promises";
import type { SQSHandler } from "aws-lambda";
import { type ReplayPhase, type ReplayProgress, type ReplayResult, replayIntoProjection } from "../archive/replay.ts";
import { archivePassed } from "../archive/watermark.ts";
import { createTableIfMissing, deleteTable } from "../aws/tables.ts";
import { loadHandler } from "../entries/load.ts";
import type { Upcaster } from "../events/upcast.ts";
import {
  type AppPlan,
  envNames,
  findProjectionGeneration,
  type PlannedFunction,
  plannedProjectionNames,
} from "../plan.ts";
import type { AppDefinition, ProjectionDefinition } from "../topology.ts";
import {
  attachedFunctions,
  consumerTable,
  isRunning,
  markAttached,
  setConsumerTable,
  setViewTable,
  viewTable,
} from "./control.ts";
import type { ProvisionedResources } from "./provision.ts";

export interface ProjectionOpsOptions {
  readonly app: AppDefinition;
  readonly plan: AppPlan;
  readonly resources: ProvisionedResources;
  readonly repoRoot: string;
  readonly upcasters: readonly Upcaster[];
  /** `<service>.<projection>`, e.g. `accounts.activity`. */
  readonly projection: string;
  readonly onStatus?: (message: string) => void;
  readonly onProgress?: (progress: ReplayProgress) => void;
  /** How long to wait for the archive to pass the handover point. @default 120000 */
  readonly archiveWaitMs?: number;
  /** How long to wait for the running `canon dev` to act on a control change. @default 30000 */
  readonly runnerWaitMs?: number;
  /** Writes per second at most into the table being filled. @default no limit */
  readonly maxWritesPerSecond?: number;
}

interface Target {
  readonly service: string;
  readonly definition: ProjectionDefinition;
  readonly consumer: PlannedFunction;
  readonly bus: string;
  readonly table: string;
  /** The generation the API reads (a next generation is built by a warm-up, not rebuilt). */
  readonly serving: boolean;
}

/** Thrown for an operator mistake (unknown projection, wrong state): the CLI prints it and exits 2. */
export class ProjectionOpError extends Error {
  override name = "ProjectionOpError";
  readonly code = "projection_op" as const;
}

function find(options: ProjectionOpsOptions): Target {
  // `accounts.balances`, or a generation being built: `accounts.balances-g2`.
  const found = findProjectionGeneration(options.app, options.projection);
  const consumer = found
    ? options.plan.functions.find(
        (f) => f.id === `${found.service.name}-${found.generation.name}` && f.role === "projection",
      )
    : undefined;
  if (found === undefined || consumer === undefined) {
    const known = plannedProjectionNames(options.app);
    throw new ProjectionOpError(`unknown projection "${options.projection}"; known: ${known.join(", ")}`);
  }
  const { service, generation } = found;
  const definition = generation.projection;
  const ref = consumer.env[envNames.table];
  const table = ref?.kind === "table" ? options.resources.tableNames.get(ref.id) : undefined;
  if (table === undefined) throw new ProjectionOpError(`${options.projection} has no table`);
  return { service: service.name, definition, consumer, bus: service.bus, table, serving: generation.serving };
}

/** Warms a detached projection up from the archive and attaches its consumer. */
export async function warmUpProjection(options: ProjectionOpsOptions): Promise<{ events: number; seconds: number }> {
  const target = find(options);
  if (!target.consumer.startsDetached) {
    throw new ProjectionOpError(
      `${options.projection} is live from the start; declare it with warmUp: true to warm it up`,
    );
  }
  const prefix = options.plan.prefix;
  if ((await attachedFunctions(prefix)).includes(target.consumer.id)) {
    throw new ProjectionOpError(`${options.projection} is already warmed up and attached`);
  }
  // Its queue was subscribed when `canon dev` provisioned it: from now on every event is buffered.
  const subscribedAt = new Date();
  options.onStatus?.(`subscribed; buffering since ${subscribedAt.toISOString()}`);
  await waitForArchive(options, target.bus, subscribedAt);
  const result = await replay(options, target, target.table, { phase: "replay", keepCheckpoint: false });
  attaching(options, result);
  await markAttached(prefix, target.consumer.id);
  await waitUntil(
    options.runnerWaitMs ?? 30_000,
    async () => ((await isRunning(prefix, target.consumer.id)) ? true : undefined),
    "canon dev to attach the consumer (is it running?)",
  );
  options.onStatus?.("replay done; consumer attached, draining the buffer");
  return result;
}

/** Rebuilds a projection blue/green: a new table, filled from the archive, then reads switch to it. */
export async function rebuildProjection(
  options: ProjectionOpsOptions,
): Promise<{ events: number; seconds: number; table: string }> {
  const target = find(options);
  if (!target.serving) {
    throw new ProjectionOpError(
      `${options.projection} is a generation being built, not the one the API reads: warm it up instead`,
    );
  }
  const prefix = options.plan.prefix;
  const view = `${target.service}/${target.definition.name}`;
  const current = await viewTable(prefix, view, target.table);
  const blue = current?.table ?? target.table;
  const generation = (current?.generation ?? 1) + 1;
  // `-r<n>`: a rebuild's tables, apart from a declared generation's `-g<n>` (plan.ts).
  const green = `${target.table}-r${generation}`;
  await createTableIfMissing(green);
  options.onStatus?.(`created ${green} beside ${blue}`);

  // 1. Fill the new table from the archive, the consumer still on the old one. Its checkpoint
  //    stays in the table: the catch-up below starts where this pass ends.
  const first = await replay(options, target, green, { phase: "replay", keepCheckpoint: true });
  // 2. Pause the consumer: from now on its queue buffers.
  await steerConsumer(options, target, blue, true);
  const pausedAt = new Date();
  options.onStatus?.(`consumer paused; ${blue} still answers reads`);
  // 3. Catch the new table up past the pause, then resume the consumer on it.
  await waitForArchive(options, target.bus, pausedAt);
  const second = await replay(options, target, green, { phase: "catch-up", keepCheckpoint: false });
  attaching(options, second);
  await steerConsumer(options, target, green, false);
  options.onStatus?.(`consumer resumed on ${green}`);
  const result = { events: first.events + second.events, seconds: first.seconds + second.seconds };

  await setViewTable(prefix, view, { base: target.table, table: green, generation });
  options.onStatus?.(`reads switched to ${green}`);
  // Readers cache the view's table briefly: retire the old one after they have moved on.
  await sleep(3_000);
  await deleteTable(blue);
  options.onStatus?.(`retired ${blue}`);
  return { ...result, table: green };
}

/** Asks the running `canon dev` to pause the consumer or move it to a table, and waits until it has. */
async function steerConsumer(
  options: ProjectionOpsOptions,
  target: Target,
  table: string,
  paused: boolean,
): Promise<void> {
  const prefix = options.plan.prefix;
  await setConsumerTable(prefix, target.consumer.id, table, paused);
  await waitUntil(
    options.runnerWaitMs ?? 30_000,
    async () => {
      const state = await consumerTable(prefix, target.consumer.id);
      return state?.applied && state.table === table && state.paused === paused ? true : undefined;
    },
    `canon dev to ${paused ? "pause" : "resume"} the consumer (is it running?)`,
  );
}

async function waitForArchive(options: ProjectionOpsOptions, bus: string, moment: Date): Promise<void> {
  const bucket = options.resources.archiveBuckets.get(bus);
  const streamName = options.resources.streamNames.get(bus);
  if (bucket === undefined || streamName === undefined) throw new ProjectionOpError(`bus ${bus} has no archive`);
  await waitUntil(
    options.archiveWaitMs ?? 120_000,
    async () => {
      const state = await archivePassed({ bucket, bus, streamName, moment });
      if (!state.passed)
        options.onStatus?.(
          `waiting for the archive to pass ${moment.toISOString()} (shards ${state.waitingOn.join(", ")})`,
        );
      return state.passed ? true : undefined;
    },
    "the archive to pass the handover point",
  );
}

/** The last progress, shown again as the consumer attaches. */
const lastProgress = new WeakMap<ProjectionOpsOptions, ReplayProgress>();

function attaching(options: ProjectionOpsOptions, result: ReplayResult): void {
  const last = lastProgress.get(options);
  if (last !== undefined) options.onProgress?.({ ...last, phase: "attach", etaSeconds: 0 });
  if (result.resumedAfter !== undefined) {
    options.onStatus?.(`resumed from a checkpoint after ${result.resumedAfter} events`);
  }
}

async function replay(
  options: ProjectionOpsOptions,
  target: Target,
  table: string,
  pass: { readonly phase: ReplayPhase; readonly keepCheckpoint: boolean },
): Promise<ReplayResult> {
  const bucket = options.resources.archiveBuckets.get(target.bus) as string;
  process.env[envNames.table] = table;
  // Its consumer's handler: its module's, or the one built from its declaration (shared/entries/).
  const handler = (await loadHandler(options.repoRoot, target.consumer)) as SQSHandler;
  return replayIntoProjection({
    bucket,
    bus: target.bus,
    table,
    handler,
    name: options.projection,
    eventTypes: target.definition.events,
    upcasters: options.upcasters,
    phase: pass.phase,
    keepCheckpoint: pass.keepCheckpoint,
    maxWritesPerSecond: options.maxWritesPerSecond,
    onProgress: (progress) => {
      lastProgress.set(options, progress);
      options.onProgress?.(progress);
    },
  });
}

async function waitUntil<T>(
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  what: string,
): Promise<T | undefined> {
  if (what === "") return undefined;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(250);
  }
  throw new ProjectionOpError(`timed out waiting for ${what}`);
}
