/**
 * The local function runner: plays, for every planned function, the event source mapping
 * declared for AWS, each function in its own worker thread with its own environment.
 */

import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { sdkFaultCounts } from "../aws/sdk-faults.ts";
import { createTableIfMissing } from "../aws/tables.ts";
import {
  attachedFunctions,
  type ConsumerRequest,
  consumerTables,
  markConsumerTableApplied,
  markRunning,
} from "../local-cloud/control.ts";
import type { ProvisionedResources } from "../local-cloud/provision.ts";
import { resolveEnv } from "../local-cloud/provision.ts";
import { type AppPlan, envNames, type PlannedFunction } from "../plan.ts";
import { type FaultKind, type FaultSpec, parseFaults } from "./faults.ts";
import { streamSignalsEnv } from "./stream-signal.ts";

export type WorkerSource =
  | {
      readonly kind: "sqs";
      readonly queueUrl: string;
      readonly queueArn: string;
      readonly batchSize: number;
      readonly maxConcurrency: number;
      readonly retryDelaySeconds: number;
      readonly faults?: FaultSpec;
    }
  | {
      readonly kind: "kinesis";
      readonly streamName: string;
      readonly streamArn: string;
      readonly batchSize: number;
      readonly bisectBatchOnError: boolean;
      readonly batchWindowSeconds: number;
      readonly parallelizationFactor: number;
      readonly maxRetryAttempts: number;
      readonly onFailureQueueUrl: string;
      readonly checkpointTable: string;
      readonly pollIntervalMs: number;
      readonly checkpointEveryMs: number;
      readonly faults?: FaultSpec;
    };

export interface RunnerOptions {
  readonly plan: AppPlan;
  readonly resources: ProvisionedResources;
  /** Warming-up projections' consumers already attached (started like any other function). */
  readonly attached?: readonly string[];
  /** Follow the local control table (attach, move consumers); `canon dev` does. @default false */
  readonly steer?: boolean;
  /** Environment every function gets (the local cloud's endpoints and credentials). */
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly repoRoot: string;
  /** Seconds before a failed SQS message is retried (AWS: the visibility timeout). @default 1 */
  readonly retryDelaySeconds?: number;
  /** Idle poll interval per Kinesis shard. @default 100 */
  readonly kinesisPollIntervalMs?: number;
  /** Faults to inject into the event sources (see faults.ts). @default from CANON_FAULTS, else none */
  readonly faults?: FaultSpec;
}

export interface Runner {
  readonly functions: readonly string[];
  /** How many faults of each kind were injected so far (all zero without fault injection). */
  faultCounts(): Readonly<Record<FaultKind, number>>;
  stop(): Promise<void>;
}

/** Starts every non-HTTP function of the plan; resolves once each has loaded its handler. */
export async function startRunner(options: RunnerOptions): Promise<Runner> {
  const checkpointTable = `${options.plan.prefix}-local-runner-checkpoints`;
  await createTableIfMissing(checkpointTable);
  const prefix = options.plan.prefix;
  const steered = options.steer === true;
  const attached = new Set(steered ? await attachedFunctions(prefix) : (options.attached ?? []));
  const tables = steered ? await consumerTables(prefix) : new Map<string, ConsumerRequest>();
  const workers = new Map<string, RunningWorker>();
  // HTTP functions are served by the API; jobs are started by commands; a warming-up projection's
  // consumer waits until its warm-up attaches it.
  const playable = options.plan.functions.filter((fn) => fn.source.kind === "sqs" || fn.source.kind === "kinesis");
  const faults = options.faults ?? (process.env.CANON_FAULTS ? parseFaults(process.env.CANON_FAULTS) : undefined);
  if (faults && options.faults === undefined)
    console.warn(`canon: injecting faults: CANON_FAULTS=${process.env.CANON_FAULTS}`);
  const faultCounts: Record<FaultKind, number> = {
    duplicate: 0,
    crash: 0,
    replay: 0,
    throttle: 0,
    timeout: 0,
    reset: 0,
  };

  const start = async (fn: PlannedFunction, table: string | undefined) => {
    const source = workerSource(fn, options, checkpointTable, faults?.roles.includes(fn.role) ? faults : undefined);
    const worker = new Worker(new URL("./function-worker.ts", import.meta.url), {
      env: {
        ...process.env,
        ...options.baseEnv,
        ...resolveEnv(fn, options.resources),
        ...(table === undefined ? {} : { [envNames.table]: table }),
        POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? "WARN",
        // Appends wake the stream's readers in this process (stream-signal.ts).
        [streamSignalsEnv]: "1",
      },
      workerData: {
        functionName: fn.id,
        handlerPath: join(options.repoRoot, fn.handler),
        entry: fn.entry,
        repoRoot: options.repoRoot,
        source,
      },
    });
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    workers.set(fn.id, { worker, exited, table });
    await new Promise<void>((resolve, reject) => {
      worker.once("error", (error) => reject(new Error(`function ${fn.id} failed to start: ${error.message}`)));
      worker.once("message", (message) => (message === "ready" ? resolve() : undefined));
    });
    worker.on("error", (error) => console.error(`[${fn.id}] crashed:`, error));
    worker.on("message", (message: { fault?: FaultKind }) => {
      if (message?.fault !== undefined) faultCounts[message.fault] += 1;
    });
  };

  try {
    // Started together: each worker spends most of its start loading modules.
    const results = await Promise.allSettled(
      playable
        .filter((fn) => !(fn.startsDetached && !attached.has(fn.id)) && !tables.get(fn.id)?.paused)
        .map((fn) => start(fn, tables.get(fn.id)?.table)),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  } catch (error) {
    await Promise.all([...workers.values()].map((w) => w.worker.terminate()));
    throw error;
  }

  // Steered by the `canon` commands through the control table: attach warmed-up consumers,
  // move a consumer to a rebuilt table.
  let steering = steered;
  const steer = async () => {
    for (const id of await attachedFunctions(prefix)) {
      const fn = playable.find((f) => f.id === id);
      if (fn === undefined || workers.has(id)) continue;
      await start(fn, (await consumerTables(prefix)).get(id)?.table);
      await markRunning(prefix, id);
    }
    for (const [id, request] of await consumerTables(prefix)) {
      const fn = playable.find((f) => f.id === id);
      if (fn === undefined || request.applied) continue;
      const running = workers.get(id);
      if (running !== undefined && (request.paused || running.table !== request.table)) {
        await stopWorker(running);
        workers.delete(id);
      }
      if (!request.paused && !workers.has(id)) await start(fn, request.table);
      await markConsumerTableApplied(prefix, id, request);
    }
  };
  const steeringLoop = (async () => {
    while (steering) {
      await sleep(500);
      if (!steering) break;
      await steer().catch((error: unknown) => console.error("canon: steering failed:", (error as Error).message));
    }
  })();

  return {
    get functions() {
      return [...workers.keys()];
    },
    // The workers' faults, and the SDK faults of this thread (the API's, when it runs here).
    faultCounts: () => {
      const here = sdkFaultCounts();
      return {
        ...faultCounts,
        throttle: faultCounts.throttle + here.throttle,
        timeout: faultCounts.timeout + here.timeout,
        reset: faultCounts.reset + here.reset,
      };
    },
    async stop() {
      steering = false;
      await steeringLoop;
      await Promise.all([...workers.values()].map(stopWorker));
    },
  };
}

interface RunningWorker {
  readonly worker: Worker;
  readonly exited: Promise<void>;
  /** The table it writes, when moved from the planned one (a rebuild). */
  readonly table: string | undefined;
}

/** Asks a worker to finish its batch and stop; terminates it after 10 s. */
async function stopWorker(running: RunningWorker): Promise<void> {
  running.worker.postMessage("stop");
  await Promise.race([running.exited, sleep(10_000)]);
  await running.worker.terminate();
}

function workerSource(
  fn: PlannedFunction,
  options: RunnerOptions,
  checkpointTable: string,
  faults: FaultSpec | undefined,
): WorkerSource {
  const r = options.resources;
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`function ${fn.id}: no ${what}`);
    return value;
  };
  const source = fn.source;
  switch (source.kind) {
    case "sqs": {
      const queueUrl = need(r.queueUrls.get(source.queueId), `queue ${source.queueId}`);
      return {
        kind: "sqs",
        queueUrl,
        queueArn: queueArnFromUrl(queueUrl),
        batchSize: source.batchSize,
        maxConcurrency: source.maxConcurrency,
        retryDelaySeconds: options.retryDelaySeconds ?? 1,
        faults,
      };
    }
    case "kinesis":
      return {
        kind: "kinesis",
        streamName: need(r.streamNames.get(source.bus), `stream of bus ${source.bus}`),
        streamArn: need(r.streamArns.get(source.bus), `stream arn of bus ${source.bus}`),
        batchSize: source.batchSize,
        bisectBatchOnError: source.bisectBatchOnError,
        maxRetryAttempts: source.maxRetryAttempts,
        onFailureQueueUrl: need(r.queueUrls.get(source.onFailureQueueId), `queue ${source.onFailureQueueId}`),
        checkpointTable,
        pollIntervalMs: options.kinesisPollIntervalMs ?? 100,
        // Lambda keeps a mapping's checkpoints for free; here each is a DynamoDB call.
        checkpointEveryMs: 1_000,
        batchWindowSeconds: source.batchWindowSeconds,
        parallelizationFactor: source.parallelizationFactor,
        faults,
      };
    case "http":
    case "job":
      throw new Error(`function ${fn.id} has no event source for the runner to play`);
  }
}

/** arn:aws:sqs:<region>:<account>:<name> from a queue URL (…/<account>/<name>). */
function queueArnFromUrl(url: string): string {
  const parts = new URL(url).pathname.split("/").filter(Boolean);
  const [account, name] = parts.slice(-2);
  return `arn:aws:sqs:${process.env.AWS_REGION ?? "us-east-1"}:${account}:${name}`;
}
