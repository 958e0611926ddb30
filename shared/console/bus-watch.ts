/**
 * The console's own reader of each bus's stream: a third reader beside the relay and the
 * archiver, read-only. It knows each shard's tip (what the relay and the archiver are measured
 * against), counts records, keeps the recent events for the live tail and tells subscribers of
 * new ones. Commits are arbitrated with the relay's pure function, so the tail shows which were
 * accepted, duplicates or conflicts. Reading starts at the oldest retained record (or at
 * `startAt`: on AWS a stream holds a day or more, and the console wants the last minutes);
 * parent shards are read to their end before their children, as every reader of a bus must.
 */
import { setTimeout as wait } from "node:timers/promises";
import { GetRecordsCommand, GetShardIteratorCommand, type Shard } from "@aws-sdk/client-kinesis";
import { compareSequence } from "../archive/layout.ts";
import { kinesisClient } from "../aws/clients.ts";
import { isAwsError } from "../aws/errors.ts";
import { listShards } from "../aws/shards.ts";
import { isCanonError } from "../errors.ts";
import { type AggregateHead, aggregateKey, arbiter } from "../events/arbitrate.ts";
import { type Commit, readCommit } from "../events/envelope.ts";
import { openCommit } from "../privacy/fields.ts";
import type { ReaderLag, TailEvent, TailVerdict } from "./source.ts";

/** Records remembered per shard to measure lag (older ones are counted, not kept). */
const arrivalsKept = 100_000;
/** Recent events kept for the tail, all buses together. */
const recentKept = 1_000;
/** Data above this many characters of JSON is cut to a preview in the tail. */
const dataPreviewChars = 2_000;
/** Commands whose trace id the watcher remembers (the newest). */
const tracesKept = 50_000;
/** A W3C traceparent's trace id: `<version>-<32 hex trace id>-<16 hex span id>-<flags>`. */
const traceparentPattern = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/;

interface ShardState {
  readonly shardId: string;
  readonly parents: readonly string[];
  records: number;
  tip: string | undefined;
  closed: boolean;
  /** Reading is done (closed and read to its end). */
  finished: boolean;
  caughtUp: boolean;
  /** The newest records' sequence numbers and arrival times, oldest first. */
  readonly arrivals: { seq: string; at: number }[];
  /** Records counted but no longer in `arrivals`. */
  dropped: number;
}

interface BusState {
  readonly bus: string;
  readonly stream: string;
  readonly shards: Map<string, ShardState>;
  readonly heads: Map<string, AggregateHead>;
}

export interface BusWatch {
  /** The shards of a bus as read so far. */
  shards(bus: string): readonly Readonly<Omit<ShardState, "arrivals" | "dropped">>[];
  /** Records read on a bus (all shards). */
  records(bus: string): number;
  /** Whether every shard of the bus has been read up to its tip. */
  caughtUp(bus: string): boolean;
  /** How far behind the tip a reader at `checkpoint` is on a shard (undefined checkpoint: at the start). */
  lag(bus: string, shardId: string, checkpoint: string | undefined): ReaderLag;
  /**
   * How far behind a reader is whose oldest unread record is `ageMs` old (Lambda's iterator
   * age, all CloudWatch tells of a deployed reader): the records that arrived since then.
   */
  lagByAge(bus: string, shardId: string, ageMs: number): ReaderLag;
  recent(): readonly TailEvent[];
  /**
   * The trace id of a command whose commit the watcher read (its traceparent), among the last
   * ones read: how the console finds the journey of a command a reactor sent.
   */
  traceOf(commandId: string): string | undefined;
  subscribe(listener: (event: TailEvent) => void): () => void;
  stop(): Promise<void>;
}

/** Starts reading every bus's stream (bus name → stream name). */
export function watchBuses(
  streams: ReadonlyMap<string, string>,
  options: {
    pollMs?: number;
    startAt?: Date;
    /** Buses whose records are telemetry, not commits: counted, never shown in the tail. */
    telemetry?: ReadonlySet<string>;
  } = {},
): BusWatch {
  const pollMs = options.pollMs ?? 500;
  const telemetry = options.telemetry ?? new Set<string>();
  const startAt = options.startAt;
  let stopping = false;
  // Stopping wakes every pending sleep at once (a sleep ends quietly, stopped or not).
  const stopped = new AbortController();
  const sleep = (ms: number) => wait(ms, undefined, { signal: stopped.signal }).catch(() => {});
  const buses = new Map<string, BusState>(
    [...streams].map(([bus, stream]) => [bus, { bus, stream, shards: new Map(), heads: new Map() }]),
  );
  const recent: TailEvent[] = [];
  // Insertion-ordered: the oldest is dropped first.
  const traces = new Map<string, string>();
  const rememberTrace = (commit: Commit) => {
    const traceId = traceparentPattern.exec(commit.traceparent ?? "")?.[1];
    if (traceId === undefined || commit.commandId === "") return;
    traces.delete(commit.commandId);
    traces.set(commit.commandId, traceId);
    if (traces.size > tracesKept) traces.delete(traces.keys().next().value as string);
  };
  const listeners = new Set<(event: TailEvent) => void>();

  const emit = (event: TailEvent) => {
    recent.push(event);
    if (recent.length > recentKept) recent.splice(0, recent.length - recentKept);
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        console.error("canon console: a tail listener failed:", (error as Error).message);
      }
    }
  };

  const readShard = async (state: BusState, shard: ShardState): Promise<void> => {
    let iterator = await shardIterator(state.stream, shard.shardId, shard.tip, startAt);
    while (!stopping) {
      if (iterator === undefined) {
        shard.finished = true;
        shard.closed = true;
        shard.caughtUp = true;
        return;
      }
      let page: Awaited<ReturnType<typeof getRecords>>;
      try {
        page = await getRecords(iterator);
      } catch (error) {
        if (stopping) return;
        console.error(`canon console: reading ${state.stream} ${shard.shardId}:`, (error as Error).message);
        await sleep(pollMs * 4);
        // A new iterator from the tip (an expired one, a restarted emulator); if that fails too,
        // the old one is tried again after the pause: the shard is not done until Kinesis says so.
        try {
          iterator = await shardIterator(state.stream, shard.shardId, shard.tip, startAt);
        } catch (again) {
          if (!stopping) console.error(`canon console: ${state.stream} ${shard.shardId}:`, (again as Error).message);
        }
        continue;
      }
      for (const record of page.records) {
        const seq = record.SequenceNumber ?? "";
        // Read again from the shard's start after a refused tip: what was shown already is skipped.
        if (shard.tip !== undefined && compareSequence(seq, shard.tip) <= 0) continue;
        const at = record.ApproximateArrivalTimestamp?.getTime() ?? Date.now();
        shard.records += 1;
        shard.tip = seq;
        shard.arrivals.push({ seq, at });
        if (shard.arrivals.length > arrivalsKept) {
          shard.arrivals.shift();
          shard.dropped += 1;
        }
        if (telemetry.has(state.bus)) continue;
        for (const event of await toTailEvents(state, shard.shardId, seq, new Date(at), record.Data, rememberTrace)) {
          emit(event);
        }
      }
      shard.caughtUp = page.millisBehindLatest === 0 || (page.records.length === 0 && page.next !== undefined);
      iterator = page.next;
      if (page.records.length === 0 && iterator !== undefined) await sleep(pollMs);
    }
  };

  const readers = new Map<string, Promise<void>>();
  const discover = async () => {
    for (const state of buses.values()) {
      let listed: Shard[];
      try {
        listed = await listShards(state.stream);
      } catch (error) {
        if (!stopping) console.error(`canon console: listing ${state.stream}:`, (error as Error).message);
        continue;
      }
      for (const s of listed) {
        const shardId = s.ShardId ?? "";
        if (!state.shards.has(shardId)) {
          const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => Boolean(p));
          state.shards.set(shardId, {
            shardId,
            parents,
            records: 0,
            tip: undefined,
            closed: s.SequenceNumberRange?.EndingSequenceNumber !== undefined,
            finished: false,
            caughtUp: false,
            arrivals: [],
            dropped: 0,
          });
        }
      }
      const known = new Set(listed.map((s) => s.ShardId));
      for (const shard of state.shards.values()) {
        const key = `${state.bus}/${shard.shardId}`;
        if (readers.has(key)) continue;
        // A parent that aged out of the stream no longer gates its children.
        const ready = shard.parents.every((p) => state.shards.get(p)?.finished === true || !known.has(p));
        if (!ready) continue;
        readers.set(
          key,
          readShard(state, shard).catch((error: unknown) => {
            if (!stopping) console.error(`canon console: ${key} stopped:`, (error as Error).message);
            readers.delete(key);
          }),
        );
      }
    }
  };

  const loop = (async () => {
    while (!stopping) {
      await discover();
      if (!stopping) await sleep(5_000);
    }
  })();

  const bus = (name: string): BusState => {
    const state = buses.get(name);
    if (state === undefined) throw new Error(`unknown bus "${name}"`);
    return state;
  };

  return {
    shards: (name) =>
      [...bus(name).shards.values()]
        .sort((a, b) => a.shardId.localeCompare(b.shardId))
        .map(({ arrivals: _a, dropped: _d, ...rest }) => ({ ...rest })),
    records: (name) => [...bus(name).shards.values()].reduce((sum, s) => sum + s.records, 0),
    caughtUp: (name) => {
      const shards = [...bus(name).shards.values()];
      return shards.length > 0 && shards.every((s) => s.caughtUp);
    },
    lag(name, shardId, checkpoint) {
      const shard = bus(name).shards.get(shardId);
      return shard === undefined ? { checkpoint, records: 0, ageMs: 0 } : lagOf(shard, checkpoint, Date.now());
    },
    lagByAge(name, shardId, ageMs) {
      const shard = bus(name).shards.get(shardId);
      if (shard === undefined || ageMs <= 0) return { records: 0, ageMs: 0 };
      return lagByAgeOf(shard, ageMs, Date.now(), startAt?.getTime());
    },
    recent: () => recent,
    traceOf: (commandId) => traces.get(commandId),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      stopping = true;
      stopped.abort();
      listeners.clear();
      await Promise.race([Promise.all([loop, ...readers.values()]), wait(3_000)]);
    },
  };
}

/**
 * How far a reader at `checkpoint` is behind a shard's tip: the records after it and the age
 * of the oldest of them. `SHARD_END` (the runner's mark for a shard read to its end) is no lag.
 */
export function lagOf(
  shard: Pick<ShardState, "arrivals" | "dropped" | "records">,
  checkpoint: string | undefined,
  now: number,
): ReaderLag {
  if (checkpoint === "SHARD_END") return { checkpoint, records: 0, ageMs: 0 };
  const { arrivals } = shard;
  // The first remembered record after the checkpoint.
  let low = 0;
  let high = arrivals.length;
  if (checkpoint !== undefined) {
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareSequence((arrivals[mid] as { seq: string }).seq, checkpoint) <= 0) low = mid + 1;
      else high = mid;
    }
  }
  const behind = arrivals.length - low;
  const oldest = arrivals[low];
  // A reader that has read nothing is behind every record; one whose position is older than
  // what is remembered is behind at least the remembered ones.
  const unknown = checkpoint !== undefined && low === 0 && shard.dropped > 0;
  return {
    checkpoint,
    records: behind + (checkpoint === undefined ? shard.dropped : 0),
    ageMs: oldest === undefined ? 0 : Math.max(0, now - oldest.at),
    ...(unknown ? { atLeast: true } : {}),
  };
}

/**
 * The records that arrived in the last `ageMs` (the reader's iterator age): it has not read
 * them. Only a lower bound when the watch started reading after the reader's position, or
 * has forgotten records that old.
 */
export function lagByAgeOf(
  shard: Pick<ShardState, "arrivals" | "dropped">,
  ageMs: number,
  now: number,
  watchedSince: number | undefined,
): ReaderLag {
  const since = now - ageMs;
  const { arrivals } = shard;
  let low = 0;
  let high = arrivals.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((arrivals[mid] as { at: number }).at < since) low = mid + 1;
    else high = mid;
  }
  const forgotten = low === 0 && shard.dropped > 0;
  const unseen = watchedSince !== undefined && watchedSince > since;
  const records = arrivals.length - low;
  // The age is the reader's oldest unread record over all shards: a shard where nothing
  // arrived within it has nothing unread.
  if (records === 0 && !forgotten && !unseen) return { records: 0, ageMs: 0 };
  return { records, ageMs, ...(forgotten || unseen ? { atLeast: true } : {}) };
}

/**
 * An iterator after `after` (the shard's tip as read), else from `startAt` or the shard's start.
 * A tip the stream refuses (trimmed past retention; a local stream made anew after its folder
 * was moved aside) is read past from the shard's start instead of wedging the reader.
 */
async function shardIterator(streamName: string, shardId: string, after: string | undefined, startAt?: Date) {
  try {
    return await iteratorOf(streamName, shardId, after, startAt);
  } catch (error) {
    if (after === undefined || !isAwsError(error, "InvalidArgumentException")) throw error;
    return iteratorOf(streamName, shardId, undefined, startAt);
  }
}

async function iteratorOf(streamName: string, shardId: string, after: string | undefined, startAt?: Date) {
  const result = await kinesisClient().send(
    new GetShardIteratorCommand(
      after === undefined
        ? startAt === undefined
          ? { StreamName: streamName, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }
          : { StreamName: streamName, ShardId: shardId, ShardIteratorType: "AT_TIMESTAMP", Timestamp: startAt }
        : {
            StreamName: streamName,
            ShardId: shardId,
            ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
            StartingSequenceNumber: after,
          },
    ),
  );
  return result.ShardIterator;
}

async function getRecords(iterator: string) {
  const page = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1_000 }));
  return { records: page.Records ?? [], next: page.NextShardIterator, millisBehindLatest: page.MillisBehindLatest };
}

/** The tail's view of one stream record: each event of its commit, or the record as malformed. */
async function toTailEvents(
  state: BusState,
  shardId: string,
  sequenceNumber: string,
  arrivedAt: Date,
  data: Uint8Array | undefined,
  onCommit: (commit: Commit) => void,
): Promise<TailEvent[]> {
  const base = { bus: state.bus, shardId, sequenceNumber, arrivedAt: arrivedAt.toISOString() };
  let commit: Commit;
  try {
    commit = await openForTail(await readCommit(data ?? new Uint8Array()));
  } catch (error) {
    return [
      {
        ...base,
        id: `${state.bus}/${shardId}/${sequenceNumber}/0`,
        verdict: "malformed",
        type: "(malformed)",
        reason: (error as Error).message,
      },
    ];
  }
  onCommit(commit);
  const key = aggregateKey(commit);
  const verdict = arbiter(state.heads).judge(commit);
  let shown: TailVerdict;
  switch (verdict.verdict) {
    case "accepted":
      shown = "accepted";
      break;
    case "unversioned":
      shown = "rejection";
      break;
    case "duplicate":
      shown = "duplicate";
      break;
    case "conflict":
      // An aggregate whose earlier history is beyond the stream's retention: take it as it comes.
      if (!state.heads.has(key)) {
        state.heads.set(key, { version: commit.expectedVersion + commit.events.length, lastCommitId: commit.commitId });
        shown = "accepted";
      } else shown = "conflict";
      break;
  }
  return commit.events.map((event, index) => {
    const json = JSON.stringify(event.data);
    const truncated = json.length > dataPreviewChars;
    return {
      ...base,
      id: `${state.bus}/${shardId}/${sequenceNumber}/${index}`,
      verdict: shown,
      service: commit.service,
      aggregateType: commit.aggregateType,
      aggregateId: commit.aggregateId,
      type: event.type,
      version: event.aggregateversion,
      eventId: event.id,
      commandId: commit.commandId,
      time: event.time,
      data: truncated ? { preview: json.slice(0, dataPreviewChars) } : event.data,
      ...(truncated ? { truncated } : {}),
    };
  });
}

/** The tail shows personal data opened where it can read the subject keys, and sealed where it cannot. */
async function openForTail(commit: Commit): Promise<Commit> {
  try {
    return await openCommit(commit);
  } catch (error) {
    if (isCanonError(error, "personal_data")) return commit;
    throw error;
  }
}
