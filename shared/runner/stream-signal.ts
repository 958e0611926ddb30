/**
 * The local runner's stream-write signal: a function of `canon dev` that appends to a stream
 * wakes that stream's readers in the same process at once, as enhanced fan-out pushes records
 * to its consumers on AWS, instead of leaving them to their next poll. Readers still poll (a
 * write from another process, a lost signal): the signal only shortens the idle wait.
 *
 * On only where the runner turns it on (`CANON_STREAM_SIGNALS=1` in its functions' environment);
 * a Lambda bundle carries the few lines but never opens a channel.
 */
import { BroadcastChannel } from "node:worker_threads";

export const streamSignalsEnv = "CANON_STREAM_SIGNALS";

const channels = new Map<string, BroadcastChannel>();
/**
 * Writes seen in this thread, so a reader can tell a write it has not read yet: per stream
 * (`stream`) and per shard (`stream shard`). A write whose shards are not known counts for every
 * shard of its stream.
 */
const writes = new Map<string, number>();
const waiters = new Map<string, Set<() => void>>();
/** Shards of each stream that a reader watches here (so an unknown shard can count for them all). */
const watched = new Map<string, Set<string>>();

const keyOf = (stream: string, shard: string | undefined) => (shard === undefined ? stream : `${stream} ${shard}`);

function count(key: string): void {
  writes.set(key, (writes.get(key) ?? 0) + 1);
  for (const wake of waiters.get(key) ?? []) wake();
}

function channel(stream: string): BroadcastChannel {
  let open = channels.get(stream);
  if (open === undefined) {
    open = new BroadcastChannel(`canon:stream-written:${stream}`);
    // A channel keeps a thread alive; this one must not.
    (open as unknown as { unref(): void }).unref();
    open.onmessage = (message: unknown) => {
      const data = (message as { data?: unknown }).data;
      const shards = Array.isArray(data) && data.every((s) => typeof s === "string") ? (data as string[]) : undefined;
      count(stream);
      for (const shard of shards ?? watched.get(stream) ?? []) count(keyOf(stream, shard));
    };
    channels.set(stream, open);
  }
  return open;
}

/** Whether this thread announces and listens (the local runner's functions). */
export function streamSignalsOn(): boolean {
  return process.env[streamSignalsEnv] === "1";
}

/**
 * Tells the readers of `stream` in this process that it was just written, to these shards when
 * known (readers of its other shards sleep on); unknown, every reader of the stream wakes.
 */
export function announceStreamWrite(stream: string, shards?: readonly string[]): void {
  if (streamSignalsOn()) channel(stream).postMessage(shards === undefined ? 1 : [...new Set(shards)]);
}

/**
 * A mark of the writes seen so far (to `shard` of `stream`, or to any shard): take it before
 * reading, so a write during the read is not missed.
 */
export function streamWriteMark(stream: string, shard?: string): number {
  if (!streamSignalsOn()) return 0;
  channel(stream);
  if (shard !== undefined) {
    const shards = watched.get(stream) ?? new Set<string>();
    watched.set(stream, shards.add(shard));
  }
  return writes.get(keyOf(stream, shard)) ?? 0;
}

/**
 * Waits up to `ms`, and less if `stream` (its `shard`, when given) is written after `mark` (or
 * was already) or `isStopping()` turns true.
 */
export async function untilStreamWritten(
  stream: string,
  mark: number,
  ms: number,
  isStopping: () => boolean,
  shard?: string,
): Promise<void> {
  const key = keyOf(stream, shard);
  if (streamSignalsOn() && (writes.get(key) ?? 0) !== mark) return;
  await new Promise<void>((resolve) => {
    const set = waiters.get(key) ?? new Set<() => void>();
    waiters.set(key, set);
    let timer: NodeJS.Timeout | undefined;
    let stopCheck: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      clearInterval(stopCheck);
      set.delete(done);
      resolve();
    };
    set.add(done);
    timer = setTimeout(done, ms);
    stopCheck = setInterval(() => (isStopping() ? done() : undefined), 50);
  });
}

interface Stack {
  middlewareStack: {
    add(middleware: (next: (args: unknown) => Promise<unknown>, context: object) => unknown, options: object): void;
  };
}

/** Makes a Kinesis client announce each PutRecord(s) it got through (when the signals are on). */
export function announcingWrites<T>(client: T): T {
  if (!streamSignalsOn()) return client;
  (client as unknown as Stack).middlewareStack.add(
    (next, context) => async (args: unknown) => {
      const result = await next(args);
      const { commandName } = context as { commandName?: string };
      if (commandName === "PutRecordsCommand" || commandName === "PutRecordCommand") {
        const input = (args as { input?: { StreamName?: string; StreamARN?: string } }).input;
        const stream = input?.StreamName ?? input?.StreamARN?.split("/").at(-1);
        if (stream !== undefined) announceStreamWrite(stream, shardsWritten(result));
      }
      return result;
    },
    { step: "initialize", name: "canonStreamSignal", override: true },
  );
  return client;
}

/** The shards a PutRecord(s) answer says it wrote to (entries Kinesis refused name none); undefined if it does not say. */
function shardsWritten(result: unknown): string[] | undefined {
  const output = (result as { output?: { ShardId?: unknown; Records?: { ShardId?: unknown }[] } } | undefined)?.output;
  if (typeof output?.ShardId === "string") return [output.ShardId];
  if (!Array.isArray(output?.Records)) return undefined;
  const shards = output.Records.map((r) => r.ShardId).filter((s): s is string => typeof s === "string");
  return shards.length > 0 ? shards : undefined;
}
