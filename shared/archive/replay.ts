/**
 * A replay from the archive into a projection's table, locally (`canon projection
 * warm-up|rebuild`, the console, the bench): the streaming engine (replay-engine.ts) with its
 * checkpoint kept in the table itself (replay-checkpoint.ts), so a replay stopped by kill -9
 * resumes where it was, and a rebuild's catch-up pass starts where its first pass ended. The
 * projection's idempotency makes a replay safe to repeat.
 */
import { randomUUID } from "node:crypto";
import type { SQSHandler } from "aws-lambda";
import { arbiter, reachesReaders } from "../events/arbitrate.ts";
import type { EventEnvelope } from "../events/envelope.ts";
import { type Upcaster, upcast } from "../events/upcast.ts";
import type { ProjectionHandler } from "../handlers/projection.ts";
import { needsOpening, openEvent } from "../privacy/fields.ts";
import { rateLimit } from "./rate-limit.ts";
import { readArchivedRecords } from "./reader.ts";
import {
  clearLocalCheckpoint,
  dropHeads,
  type HeadsRef,
  type LocalCheckpoint,
  loadHeads,
  readLocalCheckpoint,
  saveHeads,
  writeLocalCheckpoint,
} from "./replay-checkpoint.ts";
import { type ReplayCheckpoint, type ReplayPhase, type ReplayProgress, runReplay } from "./replay-engine.ts";

export type { ReplayPhase, ReplayProgress } from "./replay-engine.ts";

export interface ReplayOptions {
  readonly bucket: string;
  readonly bus: string;
  /** The table to fill: the one the handler's environment (`CANON_TABLE`) points at. */
  readonly table: string;
  /** The projection's Lambda handler (`projectionHandler(…)`). */
  readonly handler: SQSHandler;
  readonly name: string;
  /** The event types the projection subscribes to (its filter policy). */
  readonly eventTypes: readonly string[];
  readonly upcasters: readonly Upcaster[];
  readonly phase?: ReplayPhase;
  readonly onProgress?: (progress: ReplayProgress) => void;
  /** Start from the table's checkpoint when it has one. @default true */
  readonly resume?: boolean;
  /** Leave the checkpoint in the table at the end, for a later pass to resume from. @default false */
  readonly keepCheckpoint?: boolean;
  /** Writes per second at most (items, facts, events through the handler). @default no limit */
  readonly maxWritesPerSecond?: number;
  /** @default 5000 */
  readonly checkpointMs?: number;
}

export interface ReplayResult {
  /** Events applied by this run. */
  readonly events: number;
  readonly seconds: number;
  /** Events a checkpoint from before had covered, when this run resumed from one. */
  readonly resumedAfter?: number;
}

/** Replays the archive into a projection's table, resuming from its checkpoint. */
export async function replayIntoProjection(options: ReplayOptions): Promise<ReplayResult> {
  const handler = options.handler as Partial<ProjectionHandler>;
  if (handler.definition === undefined) {
    throw new Error(`${options.name}: its handler is not a projection's (build it with projectionHandler)`);
  }
  const { table } = options;
  const found = await readLocalCheckpoint(table);
  const resumed = options.resume === false ? undefined : found;
  if (found !== undefined && resumed === undefined) await clearLocalCheckpoint(table, found);
  const replayId = resumed?.replayId ?? randomUUID();
  const startedAt = resumed?.startedAt ?? new Date().toISOString();
  let heads: HeadsRef = resumed?.heads ?? { generation: 0, parts: 0 };
  const from: ReplayCheckpoint | undefined = resumed && {
    positions: resumed.positions,
    heads: await loadHeads(table, replayId, resumed.heads),
    events: resumed.events,
    objects: resumed.objects,
    bytes: resumed.bytes,
  };
  let last: LocalCheckpoint | undefined = resumed;
  const run = await runReplay({
    bucket: options.bucket,
    bus: options.bus,
    table,
    handler: handler as ProjectionHandler,
    name: options.name,
    eventTypes: options.eventTypes,
    upcasters: options.upcasters,
    from,
    phase: options.phase,
    onProgress: options.onProgress,
    checkpointMs: options.checkpointMs,
    writeLimit: rateLimit(options.maxWritesPerSecond),
    async onCheckpoint(checkpoint) {
      // The new heads first, then the checkpoint that names them, then the old heads.
      const saved = await saveHeads(table, replayId, heads.generation + 1, checkpoint.heads);
      last = {
        replayId,
        positions: checkpoint.positions,
        heads: saved,
        events: checkpoint.events,
        objects: checkpoint.objects,
        bytes: checkpoint.bytes,
        startedAt,
        updatedAt: new Date().toISOString(),
      };
      await writeLocalCheckpoint(table, last);
      await dropHeads(table, replayId, [heads]);
      heads = saved;
    },
  });
  if (!options.keepCheckpoint && last !== undefined) await clearLocalCheckpoint(table, last);
  return { events: run.events, seconds: run.seconds, ...(resumed ? { resumedAfter: resumed.events } : {}) };
}

/**
 * The accepted events of a bus's archive that a projection subscribes to, in stream order, all
 * in memory, personal data opened as readers see it: for tests and the bench's oracle, not for replays.
 */
export async function acceptedEventsFromArchive(
  bucket: string,
  bus: string,
  eventTypes: readonly string[],
  upcasters: readonly Upcaster[],
): Promise<EventEnvelope[]> {
  const wanted = new Set(eventTypes);
  const run = arbiter();
  const events: EventEnvelope[] = [];
  for await (const record of readArchivedRecords(bucket, bus)) {
    const commit = record.commit;
    if (commit === undefined || !reachesReaders(run.judge(commit))) continue;
    for (const event of commit.events)
      if (wanted.has(event.type)) events.push(upcast(needsOpening(event) ? await openEvent(event) : event, upcasters));
  }
  return events;
}
