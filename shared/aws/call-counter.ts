/**
 * Counts AWS SDK calls, for benchmarks only (`npm run bench`: AWS calls per event at each hop).
 * Off unless `CANON_COUNT_AWS_CALLS` names a folder: then every client made by clients.ts counts
 * its calls by `Service.Operation`, and each thread (the main one, or a local runner's function
 * worker, named after its function) writes its counts to `<folder>/<who>-<pid>-<thread>.json`
 * every half second. Without the variable nothing is added to any client.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMainThread, threadId, workerData } from "node:worker_threads";

/** The environment variable that turns counting on: a folder for the counts. */
export const countCallsEnv = "CANON_COUNT_AWS_CALLS";

/** What a thread writes: who it is and its calls by `Service.Operation`. */
export interface CallCounts {
  readonly who: string;
  readonly counts: Readonly<Record<string, number>>;
}

const counts: Record<string, number> = {};
let flushing = false;

interface Stack {
  middlewareStack: {
    add(middleware: (next: (args: unknown) => Promise<unknown>, context: object) => unknown, options: object): void;
  };
}

/** Adds a counting middleware to a client when counting is on; otherwise does nothing. */
export function countCalls<T>(client: T): T {
  const folder = process.env[countCallsEnv];
  if (folder === undefined || folder === "") return client;
  (client as unknown as Stack).middlewareStack.add(
    (next, context) => async (args: unknown) => {
      const { clientName, commandName } = context as { clientName?: string; commandName?: string };
      const key = `${(clientName ?? "Unknown").replace(/Client$/, "")}.${(commandName ?? "Unknown").replace(/Command$/, "")}`;
      counts[key] = (counts[key] ?? 0) + 1;
      return next(args);
    },
    { step: "initialize", name: "canonCallCounter", override: true },
  );
  if (!flushing) startFlushing(folder);
  flushing = true;
  return client;
}

/** This thread's counts so far. */
export function callCounts(): Readonly<Record<string, number>> {
  return { ...counts };
}

function startFlushing(folder: string): void {
  mkdirSync(folder, { recursive: true });
  const data = workerData as { functionName?: unknown } | undefined;
  const who = !isMainThread && typeof data?.functionName === "string" ? data.functionName : "main";
  const file = join(folder, `${who}-${process.pid}-${threadId}.json`);
  let written = "";
  const flush = () => {
    const text = JSON.stringify({ who, counts } satisfies CallCounts);
    if (text !== written) writeFileSync(file, text);
    written = text;
  };
  const timer = setInterval(flush, 500);
  timer.unref();
  process.once("exit", flush);
}
