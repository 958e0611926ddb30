/**
 * The replayer: a projection's warm-up from the archive on AWS (laws H and I, invariant 7), one
 * bounded chunk per invocation. Its warm-up job (infra/warm-up.ts, a Step Functions state
 * machine) calls it again and again with the cursor the last chunk returned, so a replay of
 * any length fits Lambda's 15 minutes, and attaches the projection's consumer once it answers
 * `done`.
 *
 * A chunk is the replay engine (shared/archive/replay-engine.ts), the same as a local replay's:
 * it streams the archive in stream order (shards by lineage, each by sequence number),
 * arbitrates every commit with the relay's pure function, and folds the accepted events the
 * projection subscribes to through the projection's own fold (or feeds them to its handler). It
 * takes whole archive objects until its time budget (about 10 minutes) is spent, then makes
 * what it applied durable, so the cursor is always "everything up to this sequence number, per
 * shard". The projection's idempotency makes a retried chunk, or the overlap with the buffered
 * queue, harmless (invariant 3).
 *
 * The arbitration heads (one per aggregate ever seen) outgrow what a cursor can carry through
 * Step Functions (256 KiB a state). They are kept as scratch items in the projection's own
 * table (shared/archive/replay-checkpoint.ts, the same table the runtime already keeps its
 * `parked#` items in), one generation per chunk, each chunk deleting the generation before
 * last, and all of them when the replay is done. The archive bucket stays read-only to a
 * replayer: a projection's job writes nothing but its table (law F).
 *
 * `done` means the archive has passed the subscription point: for every shard, the first
 * record after the archive's watermark arrived at or after `subscribedAt` (or there is none),
 * checked before the chunk lists the archive, so every record before the subscription point is
 * in an object this chunk saw, and this chunk applied all of them. Why that is enough: the
 * projection's queue was subscribed before `subscribedAt`, and a record appended to the stream
 * after that is relayed (published) after it, so it reaches the queue's buffer; the replay only
 * owes the records appended before.
 */
import { randomUUID } from "node:crypto";
import type { Context, Handler } from "aws-lambda";
import { rateLimit } from "../archive/rate-limit.ts";
import { dropHeads, type HeadsRef, loadHeads, saveHeads } from "../archive/replay-checkpoint.ts";
import { runReplay } from "../archive/replay-engine.ts";
import { archivePassed } from "../archive/watermark.ts";
import { optionalEnv, requireEnv } from "../env.ts";
import type { Upcaster } from "../events/upcast.ts";
import { functionLogger } from "../log.ts";
import { envNames } from "../plan.ts";
import type { ProjectionHandler } from "./projection.ts";

export { type HeadsRef, ReplayStateMissingError } from "../archive/replay-checkpoint.ts";

const logger = /* @__PURE__ */ functionLogger("replayer");

/** Overrides `maxWritesPerSecond` on a deployed replayer (e.g. set on the function while a warm-up runs). */
export const maxWritesEnv = "CANON_REPLAY_MAX_WRITES_PER_SECOND";

/** Where a replay stands between two chunks. Opaque to the state machine, which only passes it on. */
export interface ReplayCursor {
  /** Names this replay's scratch items in the projection's table. */
  readonly replayId: string;
  /** Per shard, the last sequence number applied: everything up to it is done. */
  readonly positions: Readonly<Record<string, string>>;
  /** The arbitration heads' generation in the table (`parts` 0: none yet, or cleaned up). */
  readonly heads: HeadsRef;
  /** The generation before, kept until the next chunk: a retried chunk still reads it. */
  readonly previous?: HeadsRef;
  readonly startedAt: string;
  /** Totals so far, for progress and ETA. */
  readonly events: number;
  readonly objects: number;
  readonly bytes: number;
}

export interface ReplayRequest {
  /** The last chunk's cursor; absent (or null) for the first chunk. */
  readonly cursor?: ReplayCursor | null;
  /** The subscription point (ISO 8601): the replay is done when the archive has passed it. */
  readonly subscribedAt: string;
}

export interface ReplayChunk {
  readonly done: boolean;
  readonly cursor: ReplayCursor;
  /** Events applied by this chunk. */
  readonly events: number;
}

export interface ReplayerOptions {
  /** Upcasters applied as events are read, besides the projection's own. @default none */
  readonly upcasters?: readonly Upcaster[];
  /** Time one chunk spends taking new archive objects; the object under way finishes. @default 10 minutes */
  readonly chunkMs?: number;
  /** Stop taking objects when the invocation has less left than this. @default 3 minutes */
  readonly reserveMs?: number;
  /**
   * Writes per second at most into the projection's table, to spare its capacity; the
   * `CANON_REPLAY_MAX_WRITES_PER_SECOND` variable, when set, takes precedence. @default no limit
   */
  readonly maxWritesPerSecond?: number;
}

interface Config {
  readonly table: string;
  readonly bus: string;
  readonly bucket: string;
  readonly streamName: string;
  readonly eventTypes: readonly string[];
  readonly name: string;
  readonly maxWritesPerSecond?: number;
}

function readConfig(options: ReplayerOptions): Config {
  const events: unknown = JSON.parse(requireEnv(envNames.projectionEvents));
  if (!Array.isArray(events) || !events.every((e) => typeof e === "string")) {
    throw new Error(`${envNames.projectionEvents} must be a JSON list of event types`);
  }
  const limit = optionalEnv(maxWritesEnv, "");
  return {
    table: requireEnv(envNames.table),
    bus: requireEnv(envNames.bus),
    bucket: requireEnv(envNames.archiveBucket),
    streamName: requireEnv(envNames.streamName),
    eventTypes: events,
    name: optionalEnv(envNames.consumerFunction, "projection"),
    maxWritesPerSecond: limit === "" ? options.maxWritesPerSecond : Number(limit),
  };
}

/**
 * The replayer's Lambda handler for a projection, from the projection's own SQS handler:
 * `export const replay = replayerFor(handler, { upcasters })` in the projection's module.
 */
export function replayerFor(
  handler: ProjectionHandler,
  options: ReplayerOptions = {},
): Handler<ReplayRequest, ReplayChunk> {
  return async (request: ReplayRequest, context: Context): Promise<ReplayChunk> => {
    const started = Date.now();
    const config = readConfig(options);
    const subscribedAt = new Date(request.subscribedAt);
    if (Number.isNaN(subscribedAt.getTime())) throw new Error(`subscribedAt "${request.subscribedAt}" is not a time`);
    const cursor = request.cursor ?? freshCursor();
    const chunkMs = options.chunkMs ?? 10 * 60_000;
    const reserveMs = options.reserveMs ?? 3 * 60_000;
    const outOfTime = () => Date.now() - started >= chunkMs || context.getRemainingTimeInMillis() < reserveMs;

    // Asked before the archive is listed: every record it finds below a watermark sits in an
    // object written before the manifest moved, so the listing the engine makes holds it.
    const handover = await archivePassed({
      bucket: config.bucket,
      bus: config.bus,
      streamName: config.streamName,
      moment: subscribedAt,
    });
    const heads = await loadHeads(config.table, cursor.replayId, cursor.heads);
    const run = await runReplay({
      bucket: config.bucket,
      bus: config.bus,
      table: config.table,
      handler,
      name: config.name,
      eventTypes: config.eventTypes,
      upcasters: options.upcasters,
      from: { positions: cursor.positions, heads, events: cursor.events, objects: cursor.objects, bytes: cursor.bytes },
      stop: outOfTime,
      // One durable point per chunk: the cursor the state machine carries. A chunk that dies is
      // run again from the cursor before it (idempotent).
      checkpointMs: Number.POSITIVE_INFINITY,
      writeLimit: rateLimit(config.maxWritesPerSecond),
    });
    const events = run.events;
    const progressed = run.checkpoint.objects > cursor.objects;

    const done = handover.passed && run.complete;
    const totals = {
      events: run.checkpoint.events,
      objects: run.checkpoint.objects,
      bytes: run.checkpoint.bytes,
      positions: run.checkpoint.positions,
    };
    let next: ReplayCursor;
    if (done) {
      await dropHeads(config.table, cursor.replayId, [cursor.heads, cursor.previous]);
      next = {
        replayId: cursor.replayId,
        startedAt: cursor.startedAt,
        ...totals,
        heads: { generation: cursor.heads.generation + 1, parts: 0 },
      };
    } else if (progressed) {
      const generation = cursor.heads.generation + 1;
      const saved = await saveHeads(config.table, cursor.replayId, generation, run.checkpoint.heads);
      await dropHeads(config.table, cursor.replayId, [cursor.previous]);
      next = {
        ...cursor,
        ...totals,
        heads: saved,
        previous: cursor.heads,
      };
    } else {
      next = cursor; // nothing new: the archiver has not caught up with the subscription point yet
    }

    const elapsed = (Date.now() - Date.parse(cursor.startedAt)) / 1000;
    const rate = next.bytes / Math.max(elapsed, 0.001);
    logger.info("replay chunk", {
      projection: config.name,
      done,
      events,
      objects: run.checkpoint.objects - cursor.objects,
      totalEvents: next.events,
      archiveBytes: run.totalBytes,
      replayedBytes: next.bytes,
      percent: run.totalBytes === 0 ? 100 : Math.floor((100 * next.bytes) / run.totalBytes),
      eventsPerSecond: Math.round(events / Math.max(run.seconds, 0.001)),
      etaSeconds: rate > 0 ? Math.ceil((run.totalBytes - next.bytes) / rate) : undefined,
      waitingOnShards: handover.waitingOn,
    });
    return { done, cursor: next, events };
  };
}

function freshCursor(): ReplayCursor {
  return {
    replayId: randomUUID(),
    positions: {},
    heads: { generation: 0, parts: 0 },
    startedAt: new Date().toISOString(),
    events: 0,
    objects: 0,
    bytes: 0,
  };
}
