/**
 * Lambda time per invocation, for the bench only: the bench starts the local system from a
 * shadow repo root whose modules re-export the real ones, with the runner's wrapper hook
 * (`CANON_HANDLER_WRAPPER`, shared/runner/function-worker.ts) set to this module's `timed`,
 * which times every call of each function's handler (its wall time, what Lambda bills: waits
 * included, e.g. the command handler's wait for its commit to show).
 *
 * Each worker thread writes `{ who, invocations, records, busyMs }` to
 * `<folder>/<who>-<pid>-<thread>.json` every half second (as shared/aws/call-counter.ts does for
 * calls), where `folder` is `CANON_BENCH_LAMBDA_TIMES`. Without the variable nothing is timed.
 */
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { isMainThread, threadId, workerData } from "node:worker_threads";
import { localSinkFunctions } from "../shared/analytics/local-sink.ts";
import type { AppPlan } from "../shared/plan.ts";

/** The environment variable naming the folder the timings go to. */
export const lambdaTimesEnv = "CANON_BENCH_LAMBDA_TIMES";

/** What one thread has timed so far. */
export interface LambdaTimes {
  readonly who: string;
  /** Handler calls (a batch each), finished or failed. */
  readonly invocations: number;
  /** Records handed over in those calls (SQS messages, Kinesis records). */
  readonly records: number;
  /** Wall time inside the handler, summed over calls (concurrent calls each count: each is billed). */
  readonly busyMs: number;
  /** CPU time of the thread so far (the handler and the event source mapping's polling), bench/cpu.ts. */
  readonly cpuMs?: number;
}

type AnyHandler = (event: unknown, context: unknown) => Promise<unknown>;

const totals = { invocations: 0, records: 0, busyMs: 0 };
let flushing = false;

/** Wraps a handler so that every call is timed (the runner's wrapper hook calls it on every local function). */
export function timed<H>(handler: H): H {
  const folder = process.env[lambdaTimesEnv];
  if (typeof handler !== "function" || folder === undefined || folder === "") return handler;
  const inner = handler as unknown as AnyHandler;
  const wrapped = async (event: unknown, context: unknown) => {
    const started = performance.now();
    try {
      return await inner(event, context);
    } finally {
      totals.invocations += 1;
      totals.records += (event as { Records?: unknown[] } | undefined)?.Records?.length ?? 0;
      totals.busyMs += performance.now() - started;
    }
  };
  Object.assign(wrapped, handler); // e.g. a projection handler's `definition`
  if (!flushing) startFlushing(folder);
  flushing = true;
  return wrapped as unknown as H;
}

function startFlushing(folder: string): void {
  mkdirSync(folder, { recursive: true });
  const data = workerData as { functionName?: unknown } | undefined;
  const who = !isMainThread && typeof data?.functionName === "string" ? data.functionName : "main";
  const file = join(folder, `${who}-${process.pid}-${threadId}.json`);
  let written = "";
  const flush = () => {
    const cpu = process.threadCpuUsage();
    const text = JSON.stringify({ who, ...totals, cpuMs: (cpu.user + cpu.system) / 1000 } satisfies LambdaTimes);
    if (text !== written) writeFileSync(file, text);
    written = text;
  };
  const timer = setInterval(flush, 500);
  timer.unref();
  process.once("exit", flush);
}

/**
 * Writes a shadow repo root under `dir`: one module per module the runner loads, re-exporting the
 * real one, the console's static files linked; sets the runner's wrapper hook to `timed`.
 * Returns the shadow root.
 */
export function writeShadowRoot(repoRoot: string, plan: AppPlan, dir: string): string {
  const root = join(dir, "shadow-root");
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, "package.json"), '{ "type": "module" }\n');
  symlinkSync(join(repoRoot, "console"), join(root, "console"), "dir");
  const timer = pathToFileURL(join(import.meta.dirname, "lambda-time.ts")).href;
  // Every local function's handler is timed by the runner's wrapper hook (shared/runner/
  // function-worker.ts), whether the kit builds it from a declared part or a module exports it;
  // the modules the runner loads (handlers, parts, contracts) are re-exported here as they are.
  process.env.CANON_HANDLER_WRAPPER = timer;
  // The runner also plays each telemetry bus's local sink, which the plan does not hold (not a Lambda on AWS).
  const modules = [...plan.functions, ...localSinkFunctions(plan)].flatMap((fn) => [
    fn.handler,
    ...Object.values(fn.entry?.targets ?? {}),
    ...(fn.entry?.contract === undefined ? [] : [fn.entry.contract]),
  ]);
  for (const module of new Set(modules)) {
    const real = pathToFileURL(join(repoRoot, module)).href;
    mkdirSync(dirname(join(root, module)), { recursive: true });
    writeFileSync(
      join(root, module),
      `// Generated by bench/lambda-time.ts.\nexport * from ${JSON.stringify(real)};\n`,
    );
  }
  return root;
}

/** The timings of every thread, summed by function. */
export function readLambdaTimes(folder: string): Map<string, LambdaTimes> {
  const byWho = new Map<string, LambdaTimes>();
  let files: string[] = [];
  try {
    files = readdirSync(folder);
  } catch {
    return byWho;
  }
  for (const file of files) {
    try {
      const t = JSON.parse(readFileSync(join(folder, file), "utf8")) as LambdaTimes;
      const sum = byWho.get(t.who) ?? { who: t.who, invocations: 0, records: 0, busyMs: 0, cpuMs: 0 };
      byWho.set(t.who, {
        who: t.who,
        invocations: sum.invocations + t.invocations,
        records: sum.records + t.records,
        busyMs: sum.busyMs + t.busyMs,
        cpuMs: (sum.cpuMs ?? 0) + (t.cpuMs ?? 0),
      });
    } catch {
      // a file being written: the next snapshot has it
    }
  }
  return byWho;
}

/** What each function did between two snapshots. */
export function diffLambdaTimes(after: Map<string, LambdaTimes>, before: Map<string, LambdaTimes>) {
  const out = new Map<string, LambdaTimes>();
  for (const [who, a] of after) {
    const b = before.get(who);
    const invocations = a.invocations - (b?.invocations ?? 0);
    if (invocations <= 0) continue;
    out.set(who, {
      who,
      invocations,
      records: a.records - (b?.records ?? 0),
      busyMs: a.busyMs - (b?.busyMs ?? 0),
      cpuMs: (a.cpuMs ?? 0) - (b?.cpuMs ?? 0),
    });
  }
  return out;
}
