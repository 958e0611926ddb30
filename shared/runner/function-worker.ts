/**
 * One local "Lambda function": a worker thread with the function's own environment, which
 * imports the handler module once (like a Lambda init) and plays its event source mapping.
 * The main thread posts "stop"; the worker finishes its current batch and exits.
 */
import { pathToFileURL } from "node:url";
import { parentPort, workerData } from "node:worker_threads";
import { onSdkFault } from "../aws/sdk-faults.ts";
import type { FaultKind } from "./faults.ts";
import { type KinesisLambda, runKinesisSource } from "./kinesis-source.ts";
import type { WorkerSource } from "./runner.ts";
import { runSqsSource, type SqsLambda } from "./sqs-source.ts";

interface WorkerInput {
  readonly functionName: string;
  readonly handlerPath: string;
  readonly source: WorkerSource;
}

const input = workerData as WorkerInput;
let stopping = false;
const isStopping = () => stopping;
parentPort?.on("message", (message) => {
  if (message === "stop") stopping = true;
});

const module = (await import(pathToFileURL(input.handlerPath).href)) as { handler?: unknown };
if (typeof module.handler !== "function") {
  throw new Error(`${input.handlerPath} has no exported "handler" function`);
}
parentPort?.postMessage("ready");

const source = input.source;
const onFault = (fault: FaultKind) => parentPort?.postMessage({ fault });
onSdkFault(onFault);
const common = { functionName: input.functionName, isStopping, onFault };
if (source.kind === "sqs") {
  await runSqsSource({ ...source, ...common }, module.handler as SqsLambda);
} else {
  await runKinesisSource({ ...source, ...common }, module.handler as KinesisLambda);
}
parentPort?.postMessage("stopped");
// Open sockets and the message port would keep the thread alive; its work is done.
process.exit(0);
