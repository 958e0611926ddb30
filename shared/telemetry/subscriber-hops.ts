/**
 * The telemetry of a bus's subscribers (projections and reactors): per commit a subscriber
 * applied, its "applied" hop (published to the subscriber's queue → applied) and an "apply"
 * record with how far it lagged behind the command; per event it parked, a "park" record.
 *
 * Read from the SQS batch and the handler's answer, outside the projection runtime: an event is
 * applied when its message is not among the batch's failures. The trace continues from the
 * `traceparent` message attribute (the relay's "relayed" span), or the event's own.
 */
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { ProjectionHandler } from "../handlers/projection.ts";
import { telemetry } from "./emitter.ts";
import { elapsedMs, type TelemetryRecord } from "./records.ts";
import { hopSpan } from "./spans.ts";
import { formatTraceparent, parseTraceparent, type TraceContext } from "./trace-context.ts";

/** What telemetry reads of an event on a subscriber's queue. */
export interface QueuedEvent {
  readonly id: string;
  readonly type: string;
  readonly time: string;
  readonly subject: string;
  readonly aggregateversion: number;
  readonly commitid: string;
  readonly commandid: string;
  readonly correlationid: string;
  readonly traceparent?: string;
}

/** Synthetic deliveries of an archive replay (shared/archive/replay-delivery.ts): not live traffic. */
const replaySource = ":canon-replay";

/** The event a queue message's body holds, if it is one (a redrive request or junk is not). */
export function queuedEvent(body: string): QueuedEvent | undefined {
  if (!body.startsWith("{")) return undefined;
  try {
    const event = JSON.parse(body) as Partial<QueuedEvent> & { specversion?: unknown };
    if (event.specversion !== "1.0" || typeof event.commandid !== "string" || typeof event.commitid !== "string")
      return undefined;
    return event as QueuedEvent;
  } catch {
    return undefined;
  }
}

/** The trace context an event's hop continues: the relay's span (message attribute), or the event's. */
export function eventTrace(record: SQSRecord, event: QueuedEvent): TraceContext | undefined {
  return parseTraceparent(record.messageAttributes?.traceparent?.stringValue) ?? parseTraceparent(event.traceparent);
}

/**
 * Records what a projection's batch applied: one "applied" span and one "apply" record per
 * commit whose events all went through (the failed ones come back, and are recorded then).
 */
export function recordApplied(
  subscriber: string,
  records: readonly SQSRecord[],
  answer: SQSBatchResponse | undefined,
  startedAt: number,
): void {
  const emitter = telemetry();
  if (!emitter.enabled || records.length === 0 || records[0]?.eventSourceARN.endsWith(replaySource)) return;
  const failed = new Set((answer?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
  const now = Date.now();
  /** Per commit: its last event applied, the message it came in, and whether one of its events failed. */
  const commits = new Map<string, { record: SQSRecord; event: QueuedEvent; failed: boolean }>();
  for (const record of records) {
    const event = queuedEvent(record.body);
    if (event === undefined) continue;
    const seen = commits.get(event.commitid);
    const broken = failed.has(record.messageId) || seen?.failed === true;
    commits.set(event.commitid, { record: seen?.record ?? record, event, failed: broken });
  }
  for (const { record, event, failed: broken } of commits.values()) {
    if (broken) continue;
    const owner = { commandId: event.commandid, correlationId: event.correlationid, aggregateId: event.subject };
    const parent = eventTrace(record, event);
    if (parent !== undefined) {
      const sentAt = Number(record.attributes.SentTimestamp) || startedAt;
      const hop = { source: subscriber, name: "applied", parent, owner, subscriber, key: event.commitid } as const;
      emitter.emit(hopSpan({ ...hop, startedAt: Math.min(sentAt, now), endedAt: now }).record);
    }
    emitter.emit(applyRecord(subscriber, event, parent, now));
  }
}

/** An "apply" record: which event a subscriber applied, and its lag behind the command (ms). */
function applyRecord(
  subscriber: string,
  event: QueuedEvent,
  parent: TraceContext | undefined,
  now: number,
): TelemetryRecord {
  return {
    kind: "apply",
    source: subscriber,
    ...(parent === undefined ? {} : { traceId: parent.traceId }),
    commandId: event.commandid,
    correlationId: event.correlationid,
    aggregateId: event.subject,
    apply: {
      subscriber,
      eventType: event.type,
      aggregateVersion: event.aggregateversion,
      lagMs: elapsedMs(Date.parse(event.time) || now, now),
    },
  };
}

/**
 * A reactor's "reacted" hop for one event: the `traceparent` the commands it causes carry (they
 * continue the hop), and `done()`, which records the hop and the apply once they are sent.
 */
export function reactedHop(
  reactor: string,
  record: SQSRecord,
  event: QueuedEvent,
): { readonly traceparent?: string; done(): void } {
  const emitter = telemetry();
  const parent = emitter.enabled ? eventTrace(record, event) : undefined;
  if (parent === undefined || record.eventSourceARN.endsWith(replaySource)) return { done() {} };
  const owner = { commandId: event.commandid, correlationId: event.correlationid, aggregateId: event.subject };
  const startedAt = Number(record.attributes.SentTimestamp) || Date.now();
  const hop = { source: reactor, name: "reacted", parent, owner, subscriber: reactor, key: event.id } as const;
  return {
    traceparent: formatTraceparent(hopSpan({ ...hop, startedAt, endedAt: startedAt }).context),
    done() {
      const now = Date.now();
      emitter.emit(hopSpan({ ...hop, startedAt: Math.min(startedAt, now), endedAt: now }).record);
      emitter.emit(applyRecord(reactor, event, parent, now));
    },
  };
}

/** Records an event a subscriber parked (shared/handlers/parking.ts), with why. */
export function recordParked(subscriber: string, eventId: string, reason: string, event?: QueuedEvent): void {
  const emitter = telemetry();
  if (!emitter.enabled) return;
  const trace = parseTraceparent(event?.traceparent);
  emitter.emit({
    kind: "park",
    source: subscriber,
    ...(trace === undefined ? {} : { traceId: trace.traceId }),
    ...(event === undefined
      ? {}
      : { commandId: event.commandid, correlationId: event.correlationid, aggregateId: event.subject }),
    park: { subscriber, eventId, reason: reason.slice(0, 1000) },
  });
}

/**
 * A projection's handler that records what each batch applied (`recordApplied`) as `name`, and
 * on Lambda sends the telemetry when due at the end of the invocation. Its definition is kept.
 */
export function tracedProjection(handler: ProjectionHandler, name = handler.definition.name): ProjectionHandler {
  const traced = async (event: SQSEvent, context?: Context) => {
    const startedAt = Date.now();
    const answer = await handler(event, context);
    recordApplied(name, event.Records, answer, startedAt);
    if (process.env.CANON_BUNDLE === "lambda") await telemetry().flushIfDue();
    return answer;
  };
  return Object.assign(traced, { definition: handler.definition });
}
