/**
 * One local "Lambda function": a worker thread with the function's own environment, which
 * imports the handler module once (like a Lambda init) and plays its event source mapping.
 * The main thread posts "stop"; the worker finishes its current batch and exits.
 */
import { parentPort, workerData } from "node:worker_threads";
import { onSdkFault } from "../aws/sdk-faults.ts";
import { loadHandler } from "../entries/load.ts";
import type { PlannedEntry } from "../plan.ts";
import { telemetry } from "../telemetry/emitter.ts";
import type { FaultKind } from "./faults.ts";
import { type KinesisLambda, runKinesisSource } from "./kinesis-source.ts";
import type { WorkerSource } from "./runner.ts";
import { runSqsSource, type SqsLambda } from "./sqs-source.ts";

/** Names a module (URL) whose `timed(handler)` wraps every local function's handler. */
export const handlerWrapperEnv = "CANON_HANDLER_WRAPPER";

interface WorkerInput {
  readonly functionName: string;
  readonly handlerPath: string;
  /** For a declared part: the entry the framework builds (shared/entries/), its paths from `repoRoot`. */
  readonly entry?: PlannedEntry;
  readonly repoRoot?: string;
  readonly source: WorkerSource;
}

const input = workerData as WorkerInput;
let stopping = false;
const isStopping = () => stopping;
parentPort?.on("message", (message) => {
  if (message === "stop") stopping = true;
});

// Like a Lambda init: the module, or the part's entry built from it, once.
const loaded = await loadHandler(input.repoRoot ?? "/", { handler: input.handlerPath, entry: input.entry });
if (typeof loaded !== "function") throw new Error(`${input.handlerPath}: its handler is not a function`);
// Local instrumentation (the bench times every invocation): a module whose `timed` wraps the handler.
const wrapper = process.env[handlerWrapperEnv];
const handler: unknown =
  wrapper === undefined || wrapper === ""
    ? loaded
    : ((await import(wrapper)) as { timed(handler: unknown): unknown }).timed(loaded);
parentPort?.postMessage("ready");

const source = input.source;
const onFault = (fault: FaultKind) => parentPort?.postMessage({ fault });
onSdkFault(onFault);
const common = { functionName: input.functionName, isStopping, onFault };
if (source.kind === "sqs") {
  await runSqsSource({ ...source, ...common }, handler as SqsLambda);
} else {
  await runKinesisSource({ ...source, ...common }, handler as KinesisLambda);
}
// What the function's telemetry still holds goes out before it stops (a Lambda sandbox that dies loses it).
await telemetry().flush();
parentPort?.postMessage("stopped");
// Open sockets and the message port would keep the thread alive; its work is done.
process.exit(0);
