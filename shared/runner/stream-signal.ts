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
/** Writes seen per stream in this thread, so a reader can tell a write it has not read yet. */
const writes = new Map<string, number>();
const waiters = new Map<string, Set<() => void>>();

function channel(stream: string): BroadcastChannel {
  let open = channels.get(stream);
  if (open === undefined) {
    open = new BroadcastChannel(`canon:stream-written:${stream}`);
    // A channel keeps a thread alive; this one must not.
    (open as unknown as { unref(): void }).unref();
    open.onmessage = () => {
      writes.set(stream, (writes.get(stream) ?? 0) + 1);
      for (const wake of waiters.get(stream) ?? []) wake();
    };
    channels.set(stream, open);
  }
  return open;
}

/** Whether this thread announces and listens (the local runner's functions). */
export function streamSignalsOn(): boolean {
  return process.env[streamSignalsEnv] === "1";
}

/** Tells the readers of `stream` in this process that it was just written. */
export function announceStreamWrite(stream: string): void {
  if (streamSignalsOn()) channel(stream).postMessage(1);
}

/** A mark of the writes seen so far: take it before reading, so a write during the read is not missed. */
export function streamWriteMark(stream: string): number {
  if (!streamSignalsOn()) return 0;
  channel(stream);
  return writes.get(stream) ?? 0;
}

/**
 * Waits up to `ms`, and less if `stream` is written after `mark` (or was already) or `isStopping()`
 * turns true.
 */
export async function untilStreamWritten(
  stream: string,
  mark: number,
  ms: number,
  isStopping: () => boolean,
): Promise<void> {
  if (streamSignalsOn() && (writes.get(stream) ?? 0) !== mark) return;
  await new Promise<void>((resolve) => {
    const set = waiters.get(stream) ?? new Set<() => void>();
    waiters.set(stream, set);
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
        if (stream !== undefined) announceStreamWrite(stream);
      }
      return result;
    },
    { step: "initialize", name: "canonStreamSignal", override: true },
  );
  return client;
}
