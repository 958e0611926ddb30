/**
 * The telemetry emitter: records for the analytics bus (law K), put on its stream without
 * slowing the path that made them. `emit` only appends to a bounded buffer; the buffer goes out
 * in one PutRecords, packed a few hundred records a stream record, when it is due (a second since the last flush, or 500 records waiting) —
 * on a timer in a long-lived process (the local cloud), and at the end of each invocation on
 * Lambda (`flushIfDue`, where a frozen sandbox runs no timers). A full buffer drops what comes
 * and counts it (a "dropped" record goes out with the next flush); a failed put is logged and
 * dropped the same way: telemetry never fails, nor waits on, a command.
 *
 * Off (a no-op) unless `CANON_TELEMETRY_STREAM` names the telemetry bus's stream.
 */
import { randomBytes } from "node:crypto";
import type { PutRecordsRequestEntry } from "@aws-sdk/client-kinesis";
import { kinesisClient } from "../aws/clients.ts";
import { recordJson, type TelemetryRecord } from "./records.ts";

/** The environment variable naming the telemetry stream (absent: telemetry off). */
export const telemetryStreamEnv = "CANON_TELEMETRY_STREAM";

/**
 * Telemetry records a stream record carries (`EmitterOptions.recordsPerEntry`) for this process's
 * emitter ("1": one record, one JSON). @default 500
 */
export const recordsPerEntryEnv = "CANON_TELEMETRY_RECORDS_PER_ENTRY";

/** What the emitter puts records with: returns how many entries were refused. */
export type PutTelemetry = (streamName: string, entries: readonly PutRecordsRequestEntry[]) => Promise<number>;

export interface EmitterOptions {
  /** The telemetry stream; undefined: the emitter is a no-op. */
  readonly streamName: string | undefined;
  /** Records held at most; what comes past them is dropped and counted. @default 5000 */
  readonly maxBuffered?: number;
  /** Records waiting that make a flush due, and the most one PutRecords carries. @default 500 */
  readonly batchRecords?: number;
  /** Time after the last flush that makes a flush due. @default 1000 */
  readonly intervalMs?: number;
  /** Flush on a timer too (an unref'd interval), for long-lived processes. @default true */
  readonly timer?: boolean;
  /**
   * Telemetry records a stream record carries, a line each (newline-delimited JSON, which Firehose's
   * format conversion reads as several documents, as the local sink and the journey indexer do),
   * up to 512 KiB a record: a flush is a few stream records, not one per telemetry record, so the
   * stream's per-record work (and, locally, the emulator's) does not grow with the telemetry.
   * @default 500
   */
  readonly recordsPerEntry?: number;
  /** @default PutRecords on the Kinesis client */
  readonly put?: PutTelemetry;
  /** @default Date.now */
  readonly now?: () => number;
}

/** Counts since the emitter was made. */
export interface EmitterStats {
  readonly emitted: number;
  readonly sent: number;
  readonly dropped: number;
  readonly flushes: number;
}

export interface TelemetryEmitter {
  /** False when telemetry is off: callers may skip building records. */
  readonly enabled: boolean;
  /** Buffers a record (or drops and counts it when the buffer is full). Never throws, never waits. */
  emit(record: TelemetryRecord): void;
  /** Flushes when due (see the module's header); resolves when that flush is done. Never rejects. */
  flushIfDue(): Promise<void>;
  /** Flushes whatever waits. Never rejects. */
  flush(): Promise<void>;
  /** Stops the timer (the buffer is left as it is). */
  close(): void;
  stats(): EmitterStats;
}

/**
 * A failed put, as one JSON line in the shape Powertools Logger writes: the emitter is in every
 * function, and the Logger (about 17 KiB) is not in the bundles of those that have no lines of
 * their own to log (a reactor), which are held to their size (test/infra/bundle-sizes.test.ts).
 */
function warnPutFailed(error: unknown, records: number): void {
  const cause = error instanceof Error ? { name: error.name, message: error.message } : { message: String(error) };
  console.warn(
    JSON.stringify({
      level: "WARN",
      message: "telemetry put failed; its records are dropped and counted",
      timestamp: new Date().toISOString(),
      service: "canon-telemetry",
      error: cause,
      records,
    }),
  );
}
const maxRecordsPerCall = 500;
const maxBytesPerCall = 4 * 1024 * 1024;

/** Builds an emitter (most code uses the process's own, `telemetry()`). */
export function createEmitter(options: EmitterOptions): TelemetryEmitter {
  const { streamName } = options;
  if (streamName === undefined || streamName === "") return disabled;
  const maxBuffered = options.maxBuffered ?? 5000;
  const batchRecords = Math.min(options.batchRecords ?? maxRecordsPerCall, maxRecordsPerCall);
  const intervalMs = options.intervalMs ?? 1000;
  const put = options.put ?? putRecords;
  const perEntry = Math.max(1, Math.floor(options.recordsPerEntry ?? 500));
  const now = options.now ?? Date.now;
  let buffer: TelemetryRecord[] = [];
  let droppedSinceFlush = 0;
  let lastFlush = now();
  let inFlight: Promise<void> | undefined;
  const counts = { emitted: 0, sent: 0, dropped: 0, flushes: 0 };

  const drop = (n: number) => {
    droppedSinceFlush += n;
    counts.dropped += n;
  };

  const send = async (records: TelemetryRecord[], dropped: number): Promise<void> => {
    const at = new Date(now()).toISOString();
    if (dropped > 0)
      records.push({ kind: "dropped", source: records[0]?.source ?? "telemetry", dropped: { count: dropped } });
    const entries = entriesOf(records, at, perEntry);
    for (const chunk of chunks(entries, batchRecords)) {
      const carried = chunk.reduce((sum, entry) => sum + entry.records, 0);
      try {
        const refused = await put(
          streamName,
          chunk.map((c) => c.entry),
        );
        // A refused entry's records are lost with it: counted, as any drop.
        const lost = refused === 0 ? 0 : Math.ceil((refused / chunk.length) * carried);
        counts.sent += carried - lost;
        if (lost > 0) drop(lost);
      } catch (error) {
        warnPutFailed(error, carried);
        drop(carried);
      }
    }
  };

  const flush = (): Promise<void> => {
    if (inFlight !== undefined) return inFlight;
    if (buffer.length === 0 && droppedSinceFlush === 0) return Promise.resolve();
    const records = buffer;
    const dropped = droppedSinceFlush;
    buffer = [];
    droppedSinceFlush = 0;
    lastFlush = now();
    counts.flushes += 1;
    inFlight = send(records, dropped).finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  const isDue = () =>
    buffer.length >= batchRecords || ((buffer.length > 0 || droppedSinceFlush > 0) && now() - lastFlush >= intervalMs);

  const interval =
    options.timer === false
      ? undefined
      : setInterval(() => {
          if (isDue()) void flush();
        }, intervalMs);
  interval?.unref();

  return {
    enabled: true,
    emit(record) {
      counts.emitted += 1;
      if (buffer.length >= maxBuffered) {
        drop(1);
        return;
      }
      // Stamped now: on Lambda a record may wait out a frozen sandbox before it is sent.
      buffer.push(record.at === undefined ? { ...record, at: new Date(now()).toISOString() } : record);
      if (buffer.length >= batchRecords && inFlight === undefined) void flush();
    },
    async flushIfDue() {
      if (inFlight !== undefined) await inFlight;
      if (isDue()) await flush();
    },
    flush: async () => {
      if (inFlight !== undefined) await inFlight;
      await flush();
    },
    close() {
      if (interval !== undefined) clearInterval(interval);
    },
    stats: () => ({ ...counts }),
  };
}

const disabled: TelemetryEmitter = {
  enabled: false,
  emit() {},
  flushIfDue: () => Promise.resolve(),
  flush: () => Promise.resolve(),
  close() {},
  stats: () => ({ emitted: 0, sent: 0, dropped: 0, flushes: 0 }),
};

let shared: { readonly stream: string | undefined; readonly emitter: TelemetryEmitter } | undefined;

let chosen: TelemetryEmitter | undefined;

/** Makes `emitter` this process's emitter, whatever the environment says (tests, the bench); undefined undoes it. */
export function useEmitter(emitter: TelemetryEmitter | undefined): void {
  chosen = emitter;
}

/** This process's emitter, for the stream `CANON_TELEMETRY_STREAM` names (made anew if that changes). */
export function telemetry(): TelemetryEmitter {
  if (chosen !== undefined) return chosen;
  const stream = process.env[telemetryStreamEnv] || undefined;
  if (shared === undefined || shared.stream !== stream) {
    shared?.emitter.close();
    const recordsPerEntry = Number(process.env[recordsPerEntryEnv]) || 500;
    shared = { stream, emitter: createEmitter({ streamName: stream, recordsPerEntry }) };
  }
  return shared.emitter;
}

/**
 * Wraps a Lambda handler so that the process's telemetry goes out when due at the end of each
 * invocation: in a Lambda bundle only, where the sandbox freezes between invocations; a local
 * process flushes on its timer instead, off the handler's path.
 */
export function flushingTelemetry<Args extends unknown[], Result>(
  handler: (...args: Args) => Promise<Result>,
): (...args: Args) => Promise<Result> {
  if (process.env.CANON_BUNDLE !== "lambda") return handler;
  return async (...args) => {
    try {
      return await handler(...args);
    } finally {
      await telemetry().flushIfDue();
    }
  };
}

/** A stream record and how many telemetry records it carries. */
interface Entry {
  readonly entry: PutRecordsRequestEntry;
  readonly records: number;
}

/** Most bytes of one packed stream record (Kinesis takes 1 MiB). */
const maxEntryBytes = 512 * 1024;

/** The records as stream records: one each, or up to `perEntry` a record, a line each. */
function entriesOf(records: readonly TelemetryRecord[], at: string, perEntry: number): Entry[] {
  // Spread by trace, so one trace's records stay in order on one shard; else anywhere.
  const keyOf = (record: TelemetryRecord | undefined) => record?.traceId || randomBytes(8).toString("hex");
  if (perEntry === 1) {
    return records.map((record) => ({
      entry: { PartitionKey: keyOf(record), Data: Buffer.from(recordJson(record, at)) },
      records: 1,
    }));
  }
  const out: Entry[] = [];
  let lines: string[] = [];
  let bytes = 0;
  const close = () => {
    if (lines.length === 0) return;
    out.push({ entry: { PartitionKey: keyOf(undefined), Data: Buffer.from(lines.join("\n")) }, records: lines.length });
    lines = [];
    bytes = 0;
  };
  for (const record of records) {
    const line = recordJson(record, at);
    if (lines.length === perEntry || bytes + line.length + 1 > maxEntryBytes) close();
    lines.push(line);
    bytes += line.length + 1;
  }
  close();
  return out;
}

function chunks(entries: readonly Entry[], size: number): Entry[][] {
  const out: Entry[][] = [];
  let current: Entry[] = [];
  let bytes = 0;
  for (const item of entries) {
    const { entry } = item;
    const length = (entry.Data?.byteLength ?? 0) + (entry.PartitionKey?.length ?? 0);
    if (current.length === size || (current.length > 0 && bytes + length > maxBytesPerCall)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += length;
  }
  if (current.length > 0) out.push(current);
  return out;
}

const putRecords: PutTelemetry = async (streamName, entries) => {
  const { PutRecordsCommand } = await import("@aws-sdk/client-kinesis");
  const result = await kinesisClient().send(new PutRecordsCommand({ StreamName: streamName, Records: [...entries] }));
  return result.FailedRecordCount ?? 0;
};
