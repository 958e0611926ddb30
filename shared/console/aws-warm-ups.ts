/**
 * Warm-ups on AWS, as the console shows and starts them: each is an execution of the
 * projection's warm-up state machine (infra/warm-up.ts), which invokes the replayer chunk
 * after chunk and then enables the consumer's queue mapping. Its progress is in its history:
 * every chunk's answer carries the events applied so far (`cursor.events`).
 */
import {
  DescribeExecutionCommand,
  ExecutionStatus,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { sfnClient } from "../aws/clients.ts";
import type { ReplayJob } from "./source.ts";

/** Executions of one machine the console looks at: the newest few. */
const executionsListed = 3;
/** History events read per execution (newest first): enough to find the last chunk's answer. */
const historyRead = 40;
/** Status lines a job keeps. */
const messagesKept = 6;

/** What one chunk of the replayer answered (shared/handlers/replayer.ts `ReplayChunk`), as far as the console needs. */
interface ChunkAnswer {
  readonly done?: boolean;
  readonly events?: number;
  readonly cursor?: { readonly events?: number; readonly objects?: number; readonly bytes?: number } | null;
}

function chunkOf(output: string | undefined): ChunkAnswer | undefined {
  if (output === undefined) return undefined;
  try {
    const parsed = JSON.parse(output) as ChunkAnswer & { chunk?: ChunkAnswer };
    const chunk = parsed.chunk ?? parsed;
    return typeof chunk === "object" && chunk !== null && "cursor" in chunk ? chunk : undefined;
  } catch {
    return undefined;
  }
}

/** The output of a history event that carries one (a task's or Lambda's answer, a state's exit). */
function outputOf(event: HistoryEvent): string | undefined {
  return (
    event.taskSucceededEventDetails?.output ??
    event.lambdaFunctionSucceededEventDetails?.output ??
    event.stateExitedEventDetails?.output
  );
}

const clock = (date: Date | undefined) => (date ? date.toISOString().slice(11, 19) : "");

/** A status line for the history events worth telling an operator. */
function describe(event: HistoryEvent): string | undefined {
  const at = clock(event.timestamp);
  switch (event.type) {
    case "ExecutionStarted":
      return `${at} started`;
    case "TaskSucceeded":
    case "LambdaFunctionSucceeded": {
      const chunk = chunkOf(outputOf(event));
      if (chunk === undefined) return `${at} attached the consumer`;
      return `${at} chunk applied ${chunk.events ?? 0} events (${chunk.cursor?.events ?? 0} in all)`;
    }
    case "TaskFailed":
    case "LambdaFunctionFailed": {
      const details = event.taskFailedEventDetails ?? event.lambdaFunctionFailedEventDetails;
      return `${at} a chunk failed: ${details?.error ?? "error"} (retried)`;
    }
    case "WaitStateEntered":
      return `${at} waiting for the archiver`;
    case "ExecutionSucceeded":
      return `${at} warm: the consumer is attached`;
    case "ExecutionFailed":
      return `${at} failed: ${event.executionFailedEventDetails?.error ?? ""} ${event.executionFailedEventDetails?.cause ?? ""}`.trim();
    case "ExecutionTimedOut":
      return `${at} timed out`;
    case "ExecutionAborted":
      return `${at} aborted`;
    default:
      return undefined;
  }
}

/**
 * A warm-up execution as a console job. `archived` is the number of records in the bus's
 * archive (from its manifests): the total the progress bar measures against, an upper bound
 * (not every archived event is one the projection handles).
 */
export function jobFromExecution(
  execution: {
    readonly executionArn: string;
    readonly name: string;
    readonly status: string;
    readonly startDate: Date;
    readonly stopDate?: Date;
    readonly error?: string;
    readonly cause?: string;
  },
  projection: string,
  history: readonly HistoryEvent[],
  archived: number,
  now: number,
): ReplayJob {
  const newestFirst = [...history].sort((a, b) => (b.timestamp?.getTime() ?? 0) - (a.timestamp?.getTime() ?? 0));
  const latest = newestFirst.map((e) => chunkOf(outputOf(e))).find((c) => c !== undefined);
  const events = latest?.cursor?.events ?? 0;
  const seconds = Math.max(1, ((execution.stopDate?.getTime() ?? now) - execution.startDate.getTime()) / 1000);
  const rate = events / seconds;
  const total = Math.max(events, archived);
  // The chunks report bytes read; the archive's size is estimated from its record count.
  const bytes = latest?.cursor?.bytes ?? 0;
  const totalBytes = events > 0 ? Math.round(bytes * (total / events)) : bytes;
  const state: ReplayJob["state"] =
    execution.status === ExecutionStatus.RUNNING
      ? "running"
      : execution.status === ExecutionStatus.SUCCEEDED
        ? "done"
        : "failed";
  const messages = newestFirst
    .map(describe)
    .filter((m): m is string => m !== undefined)
    .slice(0, messagesKept)
    .reverse();
  return {
    id: execution.name,
    projection,
    action: "warm-up",
    state,
    startedAt: execution.startDate.toISOString(),
    ...(execution.stopDate ? { finishedAt: execution.stopDate.toISOString() } : {}),
    progress: {
      phase: state === "done" ? "attach" : "replay",
      events,
      bytes,
      totalBytes,
      eventsPerSecond: rate,
      bytesPerSecond: bytes / seconds,
      etaSeconds: state === "running" && rate > 0 ? Math.max(0, (total - events) / rate) : undefined,
    },
    messages,
    events,
    ...(state === "failed"
      ? {
          error: `${execution.status}: ${[execution.error, execution.cause].filter(Boolean).join(" ") || "see its history"}`,
        }
      : {}),
  };
}

/** The newest executions of a warm-up machine, with their histories, as console jobs. */
export async function readWarmUps(stateMachineArn: string, projection: string, archived: number): Promise<ReplayJob[]> {
  const { executions = [] } = await sfnClient().send(
    new ListExecutionsCommand({ stateMachineArn, maxResults: executionsListed }),
  );
  return Promise.all(
    executions.map(async (listed) => {
      const executionArn = listed.executionArn ?? "";
      const [described, history] = await Promise.all([
        sfnClient().send(new DescribeExecutionCommand({ executionArn })),
        sfnClient().send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: historyRead })),
      ]);
      return jobFromExecution(
        {
          executionArn,
          name: listed.name ?? executionArn,
          status: described.status ?? listed.status ?? "RUNNING",
          startDate: described.startDate ?? listed.startDate ?? new Date(),
          ...(described.stopDate ? { stopDate: described.stopDate } : {}),
          ...(described.error ? { error: described.error } : {}),
          ...(described.cause ? { cause: described.cause } : {}),
        },
        projection,
        history.events ?? [],
        archived,
        Date.now(),
      );
    }),
  );
}

/** Starts a warm-up: a new execution of the machine, named so the console's own are recognisable. */
export async function startWarmUp(
  stateMachineArn: string,
): Promise<{ executionArn: string; name: string; startDate: Date }> {
  const name = `console-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  const started = await sfnClient().send(new StartExecutionCommand({ stateMachineArn, name, input: "{}" }));
  return { executionArn: started.executionArn ?? name, name, startDate: started.startDate ?? new Date() };
}
