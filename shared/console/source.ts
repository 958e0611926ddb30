/**
 * The operator console's data port: what the console and `canon status` / `canon tail` show,
 * whatever runs the system. `local-source.ts` reads the embedded local cloud (and the runner's
 * checkpoints and control table); `aws-source.ts` reads the same facts from a deployed app:
 * CloudWatch, Lambda's event source mappings, Step Functions and the same tables, queues and
 * archive (docs/console.md maps each field).
 */
import type { HopLatency } from "../analytics/sql.ts";
import type { ReplayProgress } from "../archive/replay.ts";
import { isCanonError } from "../errors.ts";
import type { DeadLetterReport, RedriveOutcome } from "../runner/dead-letters.ts";
import type { MoveOutcome } from "../runner/move-dead-letters.ts";
import type { HopName } from "../telemetry/records.ts";

export type { HopLatency } from "../analytics/sql.ts";
export type { HopName } from "../telemetry/records.ts";

/** One shard of a bus's stream, and how far each reader of it has come. */
export interface ShardView {
  readonly shardId: string;
  /** Closed by a reshard: read to its end, no new records. */
  readonly closed: boolean;
  /** The newest sequence number seen on the shard (undefined: empty). */
  readonly tip?: string;
  /** Records seen on the shard within the stream's retention (approximate on AWS). */
  readonly records: number;
  /** The relay's and the archiver's position and lag behind the tip. */
  readonly relay: ReaderLag;
  readonly archiver: ReaderLag;
}

/** A reader's checkpoint and how far behind the tip it is (Lambda's iterator age on AWS). */
export interface ReaderLag {
  readonly checkpoint?: string;
  /** Records after the checkpoint. */
  readonly records: number;
  /** Age in milliseconds of the oldest record not yet read (0: caught up). */
  readonly ageMs: number;
  /** True when `records` is a lower bound (the console no longer holds the reader's position). */
  readonly atLeast?: boolean;
  /**
   * The position is not known, only the age (a deployed reader: CloudWatch's iterator age);
   * `records` counts what arrived within that age.
   */
  readonly fromAge?: boolean;
}

export interface BusView {
  readonly bus: string;
  /**
   * "events": its readers are the relay and the archiver. "telemetry" (law K): its records are
   * not commits (no tail), and its readers are the journey indexer (in `relay`) and the columnar
   * store, the local sink or Firehose (in `archiver`).
   */
  readonly kind: "events" | "telemetry";
  readonly stream: string;
  readonly shards: readonly ShardView[];
  /** Records per second over the last sampling interval. */
  readonly recordsPerSecond: number;
  /** The console's own reader has read up to the tip (its counts are complete). */
  readonly caughtUp: boolean;
}

/** A bus's archive: what is in S3 and how far behind the stream it is (law J). */
export interface ArchiveView {
  readonly bus: string;
  readonly bucket: string;
  readonly objects: number;
  readonly records: number;
  readonly shards: readonly {
    readonly shardId: string;
    /** Everything up to here is archived (the manifest's watermark). */
    readonly watermark?: string;
    readonly objects: number;
    readonly records: number;
    readonly updatedAt?: string;
    /** Records on the stream after the watermark, and the age of the oldest of them. */
    readonly lag: ReaderLag;
  }[];
}

export type FunctionStatus =
  | "running"
  | "served by the API"
  | "job"
  | "detached"
  | "attaching"
  | "paused"
  | "moving"
  | "stopped";

export interface FunctionView {
  readonly id: string;
  readonly role: string;
  /** `bus core`, `service accounts`, `api`. */
  readonly owner: string;
  /** What triggers it: `stream core`, `queue accounts-balances`, `http`, `job`. */
  readonly source: string;
  readonly handler: string;
  readonly status: FunctionStatus;
  /** The table its consumer writes when a rebuild moved it. */
  readonly table?: string;
}

export type ProjectionStatus = "live" | "warming up" | "detached" | "rebuilding" | "paused" | "stopped";

export interface ProjectionView {
  /** `<service>.<projection>` (`<service>.state` for a service's decision state). */
  readonly name: string;
  readonly service: string;
  readonly functionId: string;
  readonly status: ProjectionStatus;
  /** Why the status is what it is, in a few words. */
  readonly detail: string;
  /** The table it writes now (a rebuild moves it), and the item count (`atLeast`: counting stopped). */
  readonly table: string;
  readonly items?: { readonly count: number; readonly atLeast: boolean };
  /** Messages in its queue, visible and in flight: its lag behind the bus. */
  readonly queue: { readonly visible: number; readonly inFlight: number };
  readonly deadLetters: number;
  readonly parked: number;
  /** It may be warmed up (declared warmUp, not attached yet) or rebuilt now. */
  readonly canWarmUp: boolean;
  readonly canRebuild: boolean;
}

/** A queue's depth (every queue of the plan: commands, projections, reactors, failures). */
export interface QueueDepth {
  readonly id: string;
  readonly visible: number;
  readonly inFlight: number;
  readonly deadLetters: number;
}

export interface CommandView {
  readonly commandId: string;
  readonly service: string;
  readonly command: string;
  readonly aggregateId: string;
  /** `api` for a client's command, `reactor` for one a reactor sent. */
  readonly origin: "api" | "reactor";
  readonly status: "pending" | "accepted" | "rejected" | "conflicted";
  readonly at: string;
  readonly events?: readonly { readonly type: string; readonly version: number }[];
  readonly reason?: string;
}

/** One hop of a command's journey (a "span" record on the analytics bus). */
export interface JourneyHop {
  readonly name: HopName | (string & {});
  /** The function or part that did it: `api`, `accounts-command-handler`, `core-relay`, … */
  readonly source: string;
  /** For `applied` and `reacted`: the projection or reactor (`accounts.balances`). */
  readonly subscriber?: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
}

/**
 * A command's journey (`GET /commands/{id}/trace`, shared/telemetry/journey.ts): its hops
 * indexed so far, sorted by start, and the commands its events caused (a saga's), with theirs.
 */
export interface JourneyView {
  readonly commandId: string;
  readonly traceId: string;
  readonly command: string;
  readonly status: string;
  readonly hops: readonly JourneyHop[];
  readonly caused: readonly JourneyView[];
}

export interface HopLatencyReport {
  readonly minutes: number;
  readonly generatedAt: string;
  readonly hops: readonly HopLatency[];
  /** Why there are no figures (no telemetry bus, nothing stored yet, not readable here). */
  readonly unavailable?: string;
}

/** What a commit on the bus was to the arbiter (shared/events/arbitrate.ts), or why it is none. */
export type TailVerdict = "accepted" | "duplicate" | "conflict" | "rejection" | "malformed";

/** One event as the live tail shows it. */
export interface TailEvent {
  /** `<bus>/<shard>/<sequence>/<index in commit>`: unique, ordered per shard. */
  readonly id: string;
  readonly bus: string;
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly arrivedAt: string;
  readonly verdict: TailVerdict;
  readonly service?: string;
  readonly aggregateType?: string;
  readonly aggregateId?: string;
  readonly type: string;
  readonly version?: number;
  readonly eventId?: string;
  readonly commandId?: string;
  readonly time?: string;
  /** The event's data; a large one is cut to a preview (`truncated`). */
  readonly data?: Record<string, unknown>;
  readonly truncated?: boolean;
  /** Why a record is malformed. */
  readonly reason?: string;
}

export interface TailFilter {
  /** Event types (any of). */
  readonly types?: readonly string[];
  /** An aggregate id, `<type>#<id>`, or a prefix ending in `*`. */
  readonly aggregate?: string;
  readonly service?: string;
  readonly bus?: string;
}

export type ReplayAction = "warm-up" | "rebuild";

/** A warm-up or rebuild started from the console, with its progress. */
export interface ReplayJob {
  readonly id: string;
  readonly projection: string;
  readonly action: ReplayAction;
  readonly state: "running" | "done" | "failed";
  readonly startedAt: string;
  readonly finishedAt?: string;
  readonly progress?: ReplayProgress;
  /** The latest status lines, oldest first. */
  readonly messages: readonly string[];
  readonly events?: number;
  readonly error?: string;
}

/** One sample of the time series the charts draw (every couple of seconds). */
export interface Sample {
  /** Epoch milliseconds. */
  readonly t: number;
  readonly buses: Readonly<
    Record<
      string,
      {
        readonly recordsPerSecond: number;
        readonly relayLag: number;
        readonly archiverLag: number;
        readonly archiveLag: number;
      }
    >
  >;
  /** Queue depth (visible + in flight) per projection. */
  readonly projections: Readonly<Record<string, number>>;
  /** Messages in every dead-letter queue together. */
  readonly deadLetters: number;
  /**
   * What the bus lags count: records behind the tip (local), or the age in milliseconds of
   * the oldest unread record (AWS: CloudWatch's `IteratorAge`, which has no record count).
   */
  readonly lagUnit?: "records" | "ms";
}

/** Everything the console's overview shows at once. */
export interface Overview {
  readonly generatedAt: string;
  /** What the console reads: the local cloud, or a deployed app (with its region). */
  readonly target: { readonly kind: "local" } | { readonly kind: "aws"; readonly region: string };
  readonly prefix: string;
  readonly startedAt: string;
  readonly buses: readonly BusView[];
  readonly archive: readonly ArchiveView[];
  readonly projections: readonly ProjectionView[];
  readonly functions: readonly FunctionView[];
  readonly queues: readonly QueueDepth[];
  readonly deadLetters: DeadLetterReport;
  readonly replays: readonly ReplayJob[];
  /** What could not be read or found (AWS: a denied call, a resource not deployed yet); the rest still answers. */
  readonly warnings?: readonly string[];
}

/** The port the console's routes and the CLI read through. */
export interface ConsoleSource {
  overview(): Promise<Overview>;
  buses(): Promise<readonly BusView[]>;
  archive(): Promise<readonly ArchiveView[]>;
  projections(): Promise<readonly ProjectionView[]>;
  functions(): Promise<readonly FunctionView[]>;
  deadLetters(): Promise<DeadLetterReport>;
  commands(limit: number): Promise<readonly CommandView[]>;
  /** A command's journey (undefined: no such command); the id is well formed. */
  trace(commandId: string): Promise<JourneyView | undefined>;
  /** Per-hop latency percentiles over the last `minutes`, from the analytics bus. */
  hopLatencies(minutes: number): Promise<HopLatencyReport>;
  /** The time series, oldest first. */
  series(): readonly Sample[];
  /** The most recent events matching `filter`, oldest first. */
  recentEvents(filter: TailFilter, limit: number): readonly TailEvent[];
  /** Calls `listener` with every new event; returns the unsubscribe. */
  subscribe(listener: (event: TailEvent) => void): () => void;
  redrive(projection: string, aggregate: string, options: { skip?: string }): Promise<RedriveOutcome>;
  /** Sends a queue's dead letters back to it, in order (`canon dlq move`). */
  moveDeadLetters(queueId: string): Promise<MoveOutcome>;
  startReplay(projection: string, action: ReplayAction): Promise<ReplayJob>;
  replays(): readonly ReplayJob[];
  stop(): Promise<void>;
}

/** Whether an event passes a tail filter. */
export function matchesFilter(event: TailEvent, filter: TailFilter): boolean {
  if (filter.bus && event.bus !== filter.bus) return false;
  if (filter.service && event.service !== filter.service) return false;
  if (filter.types && filter.types.length > 0 && !filter.types.includes(event.type)) return false;
  if (filter.aggregate) {
    const wanted = filter.aggregate;
    const group = `${event.aggregateType ?? ""}#${event.aggregateId ?? ""}`;
    if (wanted.endsWith("*")) {
      const prefix = wanted.slice(0, -1);
      if (!(event.aggregateId ?? "").startsWith(prefix) && !group.startsWith(prefix)) return false;
    } else if (event.aggregateId !== wanted && group !== wanted) return false;
  }
  return true;
}

/** Whether `error` is a `ConsoleRequestError` (by its code), with its HTTP status. */
export function isConsoleRequestError(error: unknown): error is ConsoleRequestError {
  return isCanonError(error, "console_request");
}

/** Thrown for a console request that cannot be done (unknown projection, wrong state). */
export class ConsoleRequestError extends Error {
  override name = "ConsoleRequestError";
  readonly code = "console_request" as const;
  readonly status: 400 | 404 | 409;
  constructor(message: string, status: 400 | 404 | 409) {
    super(message);
    this.status = status;
  }
}
