/**
 * The spans of a command's journey, as telemetry records: one per hop (accepted, queued,
 * decided, appended, relayed, applied, reacted), each a child of the hop before it in the
 * command's trace. A hop's span id is derived from the trace, the command, the hop and what
 * distinguishes it (the attempt, the subscriber), so a retried hop overwrites its own span in
 * the journey index rather than adding one.
 */
import type { HopName, TelemetryRecord } from "./records.ts";
import { childContext, hopSpanId, type TraceContext } from "./trace-context.ts";

/** Whose journey a hop is part of. */
export interface HopOwner {
  readonly commandId: string;
  readonly correlationId?: string;
  readonly aggregateId?: string;
}

export interface Hop {
  /** The function or part that ran the hop ("api", "accounts-command-handler", "accounts.balances"). */
  readonly source: string;
  readonly name: HopName;
  /** The context the hop continues: its parent span. */
  readonly parent: TraceContext;
  readonly owner: HopOwner;
  readonly startedAt: number;
  readonly endedAt: number;
  /** For "applied" and "reacted": the projection or reactor. */
  readonly subscriber?: string;
  /** What else tells this hop from another of the same name (an attempt, a commit id). */
  readonly key?: string;
}

/** The span record of a hop, and the context the next hop continues from. */
export function hopSpan(hop: Hop): { readonly record: TelemetryRecord; readonly context: TraceContext } {
  const { parent, owner } = hop;
  const spanId = hopSpanId(parent.traceId, owner.commandId, hop.name, hop.subscriber ?? "", hop.key ?? "");
  const record: TelemetryRecord = {
    kind: "span",
    source: hop.source,
    traceId: parent.traceId,
    spanId,
    parentSpanId: parent.spanId,
    commandId: owner.commandId,
    ...(owner.correlationId === undefined ? {} : { correlationId: owner.correlationId }),
    ...(owner.aggregateId === undefined ? {} : { aggregateId: owner.aggregateId }),
    span: {
      name: hop.name,
      startedAt: new Date(hop.startedAt).toISOString(),
      endedAt: new Date(Math.max(hop.startedAt, hop.endedAt)).toISOString(),
      ...(hop.subscriber === undefined ? {} : { subscriber: hop.subscriber }),
    },
  };
  return { record, context: childContext(parent, spanId) };
}
