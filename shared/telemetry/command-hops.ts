/**
 * The command handler's telemetry: for each command of a batch, its "queued" hop (sent to the
 * queue → taken from it), and each round's "decided" (state read, decided, sealed) and
 * "appended" (PutRecords) hops, then its outcome with the time each took. The commit a command
 * appends carries the trace context of its "appended" span, derived before the span is emitted
 * (span ids are derived, see spans.ts), so everything downstream continues from it.
 */
import type { SQSRecord } from "aws-lambda";
import type { CommandMessage } from "../domain/command-message.ts";
import { telemetry } from "./emitter.ts";
import { elapsedMs } from "./records.ts";
import { hopSpan } from "./spans.ts";
import { childContext, formatTraceparent, hopSpanId, parseTraceparent, type TraceContext } from "./trace-context.ts";

/** When a round's steps happened (epoch ms). */
export interface RoundTimes {
  readonly startedAt: number;
  readonly decidedAt: number;
  readonly appendStartedAt: number;
  readonly appendedAt: number;
}

const owner = (message: CommandMessage) => ({
  commandId: message.commandId,
  correlationId: message.correlationId,
  aggregateId: message.aggregateId,
});

/** The trace context of the "queued" hop of a command (what "decided" continues). */
function queuedContext(message: CommandMessage): TraceContext | undefined {
  const sent = parseTraceparent(message.traceparent);
  return sent && childContext(sent, hopSpanId(sent.traceId, message.commandId, "queued", "", ""));
}

/** The traceparent a command's commit carries: its trace, and the span that appends it. */
export function commitTraceparent(message: CommandMessage, attempt: number): string | undefined {
  const queued = queuedContext(message);
  if (queued === undefined) return undefined;
  const decided = childContext(queued, hopSpanId(queued.traceId, message.commandId, "decided", "", String(attempt)));
  return formatTraceparent(
    childContext(decided, hopSpanId(decided.traceId, message.commandId, "appended", "", String(attempt))),
  );
}

/** One batch's telemetry, for the handler of `source` ("accounts-command-handler"). */
export class CommandHops {
  private readonly emitter = telemetry();
  private readonly sentAt = new Map<string, number>();
  private readonly source: string;
  private readonly takenAt: number;

  constructor(source: string, takenAt: number) {
    this.source = source;
    this.takenAt = takenAt;
  }

  /** Records the "queued" hop of a command taken from the queue. */
  queued(record: SQSRecord, message: CommandMessage): void {
    const sentAt = Number(record.attributes.SentTimestamp) || this.takenAt;
    this.sentAt.set(message.commandId, sentAt);
    const parent = parseTraceparent(message.traceparent);
    if (!this.emitter.enabled || parent === undefined) return;
    const hop = { source: this.source, name: "queued", parent, owner: owner(message), key: "" } as const;
    this.emitter.emit(hopSpan({ ...hop, startedAt: sentAt, endedAt: this.takenAt }).record);
  }

  /** Records a round's "decided" and (unless nothing was appended for it) "appended" hops of a command. */
  round(message: CommandMessage, attempt: number, times: RoundTimes, appended: boolean): void {
    const queued = queuedContext(message);
    if (!this.emitter.enabled || queued === undefined) return;
    const key = String(attempt);
    const common = { source: this.source, owner: owner(message), key } as const;
    const decided = hopSpan({
      ...common,
      name: "decided",
      parent: queued,
      startedAt: times.startedAt,
      endedAt: times.decidedAt,
    });
    this.emitter.emit(decided.record);
    if (!appended) return;
    const append = { ...common, name: "appended", parent: decided.context } as const;
    this.emitter.emit(hopSpan({ ...append, startedAt: times.appendStartedAt, endedAt: times.appendedAt }).record);
  }

  /** Records a command's outcome, with its times: queued, and from being taken to being settled. */
  outcome(message: CommandMessage, status: string, attempts: number, times?: RoundTimes): void {
    if (!this.emitter.enabled) return;
    const now = Date.now();
    const sentAt = this.sentAt.get(message.commandId) ?? this.takenAt;
    const trace = parseTraceparent(message.traceparent);
    this.emitter.emit({
      kind: "outcome",
      source: this.source,
      ...(trace === undefined ? {} : { traceId: trace.traceId, parentSpanId: trace.spanId }),
      ...owner(message),
      outcome: {
        command: message.command.type,
        status,
        attempts,
        queuedMs: elapsedMs(sentAt, this.takenAt),
        ...(times === undefined
          ? {}
          : {
              decidedMs: elapsedMs(times.startedAt, times.decidedAt),
              appendedMs: elapsedMs(times.appendStartedAt, times.appendedAt),
            }),
        settledMs: elapsedMs(sentAt, now),
      },
    });
  }
}
