/**
 * The replay engine: streams a bus's archive into a projection's table in bounded memory, the
 * same way locally (replay.ts: `canon projection warm-up|rebuild`, the console, the bench) and on
 * AWS (shared/handlers/replayer.ts, the warm-up job's chunks).
 *
 * - Streams: archive objects come in the order every reader must use (shard lineage, then
 *   sequence; reader.ts), a few fetched ahead; each record is arbitrated with the relay's pure
 *   function, its accepted events upcast and filtered, and nothing of an object is kept once it
 *   is applied. What grows with the archive is the arbitration heads, one per aggregate (as the
 *   relay's own table), never the events.
 * - Folds, then writes: an aggregate projection's events are folded in memory through its own
 *   fold (replay-sinks.ts), each item written once per checkpoint in BatchWriteItem calls; any
 *   other projection gets its events through its own handler, a batch per archive object. A
 *   replayed view equals a live one: the same fold, the same handler.
 * - Resumable: every `checkpointMs` (and at the end) it makes what it applied durable, then
 *   hands the caller a checkpoint (per shard the last sequence number applied, and the heads)
 *   to keep; started from one, it skips what it covers. Every write is idempotent (item
 *   versions, fact ids, counted event ids), so work past the last checkpoint, done again after a
 *   crash, changes nothing.
 * - A replay writes a table no consumer writes at the same time (a warm-up's consumer is not
 *   attached yet; a rebuild fills a new table): that is what lets the fold write unconditionally.
 */
import { type AggregateHead, arbiter, reachesReaders } from "../events/arbitrate.ts";
import type { EventEnvelope } from "../events/envelope.ts";
import { type Upcaster, upcast } from "../events/upcast.ts";
import type { ProjectionHandler } from "../handlers/projection.ts";
import { needsOpening, openEvent } from "../privacy/fields.ts";
import type { ArchivedRecord } from "./layout.ts";
import { compareSequence } from "./layout.ts";
import { type RateLimit, unlimited } from "./rate-limit.ts";
import { type ArchiveObject, listArchive, readObject } from "./reader.ts";
import { deliverySink, foldSink, type ReplaySink } from "./replay-sinks.ts";

/** What a replay has applied: everything up to `positions`, judged with `heads`. */
export interface ReplayCheckpoint {
  /** Per shard, the last sequence number applied. */
  readonly positions: Readonly<Record<string, string>>;
  readonly heads: ReadonlyMap<string, AggregateHead>;
  /** Totals since the replay began (across resumes). */
  readonly events: number;
  readonly objects: number;
  readonly bytes: number;
}

export type ReplayPhase = "replay" | "catch-up" | "attach";

export interface ReplayProgress {
  readonly phase: ReplayPhase;
  /** Events applied so far (across resumes). */
  readonly events: number;
  /** Archive bytes (compressed) read so far, of `totalBytes` listed. */
  readonly bytes: number;
  readonly totalBytes: number;
  /** Over this run (a resumed replay's rate leaves out what was done before). */
  readonly eventsPerSecond: number;
  readonly bytesPerSecond: number;
  /** Seconds left at the current rate (undefined before the first object). */
  readonly etaSeconds: number | undefined;
}

export interface ReplayEngineOptions {
  readonly bucket: string;
  readonly bus: string;
  /** The table the projection's handler writes (`CANON_TABLE` of its environment). */
  readonly table: string;
  /** The projection's Lambda handler, with its environment pointing at `table`. */
  readonly handler: ProjectionHandler;
  /** For errors and logs. */
  readonly name: string;
  /** The event types the projection subscribes to (its filter policy). */
  readonly eventTypes: readonly string[];
  /** Upcasters applied as events are read (the projection's own are applied too). @default none */
  readonly upcasters?: readonly Upcaster[];
  /** Where to start (a checkpoint from before). @default the archive's start */
  readonly from?: ReplayCheckpoint;
  /** Asked before each object after the first: true stops the replay there (a Lambda's time budget). */
  readonly stop?: () => boolean;
  /** How often to make progress durable and hand out a checkpoint. @default 5000 */
  readonly checkpointMs?: number;
  /** Keeps a checkpoint; called when what it covers is in the table. */
  readonly onCheckpoint?: (checkpoint: ReplayCheckpoint) => Promise<void>;
  readonly onProgress?: (progress: ReplayProgress) => void;
  readonly phase?: ReplayPhase;
  /** Spares the table: writes per second (items, facts, a handler's batches counted by event). @default none */
  readonly writeLimit?: RateLimit;
  /** Archive objects fetched ahead of the one being applied. @default 6 */
  readonly readAhead?: number;
  /** Items an aggregate projection's fold keeps in memory between checkpoints. @default 50000 */
  readonly cacheItems?: number;
}

export interface ReplayRun {
  /** Every object listed was applied (false: stopped by `stop`). */
  readonly complete: boolean;
  readonly checkpoint: ReplayCheckpoint;
  /** Events applied by this run. */
  readonly events: number;
  readonly seconds: number;
  /** The archive's size as listed (compressed bytes), for progress. */
  readonly totalBytes: number;
}

/** Replays the archive (from `from`) into the projection; resolves with where it got. */
export async function runReplay(options: ReplayEngineOptions): Promise<ReplayRun> {
  const started = Date.now();
  const wanted = new Set(options.eventTypes);
  const projectionUpcasters = options.handler.definition.upcasters ?? [];
  const readUpcasters = options.upcasters ?? [];
  const opens = options.handler.definition.personalData !== "sealed";
  const heads = new Map(options.from?.heads ?? []);
  const run = arbiter(heads);
  const positions = new Map(Object.entries(options.from?.positions ?? {}));
  const writes = options.writeLimit ?? unlimited;
  const sink: ReplaySink =
    options.handler.definition.fold === undefined
      ? deliverySink({ handler: options.handler, name: options.name, writes })
      : foldSink({
          table: options.table,
          fold: options.handler.definition.fold,
          handler: options.handler,
          name: options.name,
          writes,
          cacheItems: options.cacheItems ?? 50_000,
        });

  const shards = await listArchive(options.bucket, options.bus);
  const todo: { shard: string; object: ArchiveObject }[] = [];
  let totalBytes = 0;
  let doneBytes = 0;
  for (const { shard, objects } of shards) {
    for (const object of objects) {
      totalBytes += object.size;
      const position = positions.get(shard);
      if (position !== undefined && compareSequence(object.last, position) <= 0) doneBytes += object.size;
      else todo.push({ shard, object });
    }
  }

  const before = { events: options.from?.events ?? 0, objects: options.from?.objects ?? 0, bytes: doneBytes };
  let events = 0;
  let objects = 0;
  let bytes = 0;
  const checkpoint = (): ReplayCheckpoint => ({
    positions: Object.fromEntries(positions),
    heads: run.heads,
    events: before.events + events,
    objects: before.objects + objects,
    bytes: before.bytes + bytes,
  });
  const report = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const bytesPerSecond = bytes / seconds;
    options.onProgress?.({
      phase: options.phase ?? "replay",
      events: before.events + events,
      bytes: before.bytes + bytes,
      totalBytes,
      eventsPerSecond: events / seconds,
      bytesPerSecond,
      etaSeconds: bytes === 0 ? undefined : (totalBytes - before.bytes - bytes) / bytesPerSecond,
    });
  };
  const makeDurable = async () => {
    await sink.flush();
    await options.onCheckpoint?.(checkpoint());
  };

  let complete = true;
  let lastCheckpoint = Date.now();
  const checkpointMs = options.checkpointMs ?? 5_000;
  let checkpointInterval = checkpointMs;
  const reads = readAhead(options.bucket, todo, options.readAhead ?? 6);
  try {
    for (let i = 0; i < todo.length; i++) {
      if (objects > 0 && options.stop?.() === true) {
        complete = false;
        break;
      }
      const { shard, object } = todo[i] as (typeof todo)[number];
      const records = await reads.next();
      let last = positions.get(shard);
      const accepted: EventEnvelope[] = [];
      for (const record of records) {
        // A batch retried with other boundaries archived some records twice: each is read once.
        if (last !== undefined && compareSequence(record.sequenceNumber, last) <= 0) continue;
        last = record.sequenceNumber;
        const commit = record.commit;
        if (commit === undefined || !reachesReaders(run.judge(commit))) continue;
        for (const read of commit.events) {
          if (!wanted.has(read.type)) continue;
          // Personal data opened as the live runtime opens it (a state projection keeps it sealed).
          const event = opens && needsOpening(read) ? await openEvent(read) : read;
          accepted.push(upcast(upcast(event, readUpcasters), projectionUpcasters));
        }
      }
      await sink.apply(accepted);
      if (last !== undefined) positions.set(shard, last);
      events += accepted.length;
      objects += 1;
      bytes += object.size;
      report();
      if (Date.now() - lastCheckpoint >= checkpointInterval || sink.pending >= sink.flushAt) {
        const began = Date.now();
        await makeDurable();
        lastCheckpoint = Date.now();
        // Checkpoints stay under a tenth of the time however many heads they carry.
        checkpointInterval = Math.max(checkpointMs, 10 * (lastCheckpoint - began));
      }
    }
  } finally {
    reads.close();
  }
  await makeDurable();
  report();
  return { complete, checkpoint: checkpoint(), events, seconds: (Date.now() - started) / 1000, totalBytes };
}

/** Fetches objects in order, up to `ahead` of the one asked for. */
function readAhead(
  bucket: string,
  todo: readonly { object: ArchiveObject }[],
  ahead: number,
): { next(): Promise<readonly ArchivedRecord[]>; close(): void } {
  const inflight: Promise<ArchivedRecord[]>[] = [];
  let fetched = 0;
  let closed = false;
  const fill = () => {
    while (!closed && inflight.length < Math.max(1, ahead) && fetched < todo.length) {
      const read = readObject(bucket, (todo[fetched] as { object: ArchiveObject }).object.key);
      read.catch(() => {}); // awaited in turn; not an unhandled rejection if the replay stops first
      inflight.push(read);
      fetched += 1;
    }
  };
  return {
    async next() {
      fill();
      const read = inflight.shift();
      if (read === undefined) throw new Error("replay: read past the archive's listing");
      const records = await read;
      fill();
      return records;
    },
    close() {
      closed = true;
    },
  };
}
