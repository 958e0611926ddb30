/**
 * The journey indexer: the telemetry bus's stream → the journeys index (DynamoDB, key trace id +
 * span id, 7 days to live), so `GET /commands/{commandId}/trace` reads a command's hops with one
 * Query (shared/telemetry/journey.ts). It keeps the "span" records and each command's "outcome"
 * (its name and status, for the commands a reactor caused); the rest of the bus is for SQL.
 *
 * Idempotent: a span is named by its span id (derived from the hop), so a retried hop names the
 * same span again, and the reader keeps one span per id; a retried batch writes the same items
 * again. A stream record holds one or more telemetry records, a line each. A line that is not
 * telemetry is logged and skipped: the bus is for measurements, never worth holding a shard for.
 */
import type { KinesisStreamBatchResponse, KinesisStreamHandler, KinesisStreamRecord } from "aws-lambda";
import { batchPutItems } from "../aws/batch.ts";
import { requireEnv } from "../env.ts";
import { functionLogger } from "../log.ts";
import { envNames, journeyRetentionDays } from "../plan.ts";
import { type JourneyItem, type JourneySpan, outcomeItemKey } from "../telemetry/journey.ts";

const logger = /* @__PURE__ */ functionLogger("journeys");

/** Spans one index item holds at most (an item is at most 400 KB; a span is a few hundred bytes). */
const maxSpansPerItem = 200;

let table: string | undefined;

/**
 * The journey indexer's Lambda handler (Kinesis event source on the telemetry stream). The
 * batch's spans are written a trace at a time: one item per trace (per 200 spans) holds them
 * all as one JSON string, keyed by the trace and the sequence number of its first record in the batch, so a batch
 * delivered again writes the same items, and a trace costs one write a batch, not one a span.
 */
export const handler: KinesisStreamHandler = async (event): Promise<KinesisStreamBatchResponse> => {
  table ??= requireEnv(envNames.journeyTable);
  const expiresAt = Math.floor(Date.now() / 1000) + journeyRetentionDays * 24 * 3600;
  const byTrace = new Map<string, { first: string; spans: Map<string, JourneySpan> }>();
  for (const record of event.Records) {
    for (const span of journeySpans(record)) {
      let trace = byTrace.get(span.traceId);
      if (trace === undefined) {
        trace = { first: record.kinesis.sequenceNumber, spans: new Map() };
        byTrace.set(span.traceId, trace);
      }
      trace.spans.set(span.spanId, span); // the same span twice in a batch: the last one stands
    }
  }
  const items: JourneyItem[] = [];
  for (const [traceId, { first, spans }] of byTrace) {
    const all = [...spans.values()];
    for (let i = 0; i < all.length; i += maxSpansPerItem) {
      const chunk = all.slice(i, i + maxSpansPerItem).map(({ traceId: _, ...span }) => span);
      // One string attribute, not a list of maps: far less for DynamoDB (and the SDK) to take apart.
      const spans = JSON.stringify(chunk);
      items.push({ traceId, spanId: `batch-${first}-${i / maxSpansPerItem}`, kind: "spans", spans, expiresAt });
    }
  }
  await batchPutItems(table, items as unknown as Record<string, unknown>[]);
  return { batchItemFailures: [] };
};

/** The spans and outcomes a stream record holds (one telemetry record a line), with their traces. */
export function journeySpans(record: KinesisStreamRecord): JourneySpan[] {
  const text = Buffer.from(record.kinesis.data, "base64").toString("utf8");
  const spans: JourneySpan[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      logger.warn("telemetry record is not JSON; skipped", { sequenceNumber: record.kinesis.sequenceNumber });
      continue;
    }
    const span = journeySpan(parsed);
    if (span !== undefined) spans.push(span);
  }
  return spans;
}

/** The journey span a telemetry record makes, if it is a span or an outcome with a trace. */
export function journeySpan(parsed: Record<string, unknown>): JourneySpan | undefined {
  const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : undefined);
  const traceId = text(parsed.traceId);
  const commandId = text(parsed.commandId);
  if (traceId === undefined || commandId === undefined) return undefined;
  const common = {
    traceId,
    commandId,
    ...optional("source", text(parsed.source)),
    ...optional("parentSpanId", text(parsed.parentSpanId)),
  };
  if (parsed.kind === "span") {
    const span = (parsed.span ?? {}) as Record<string, unknown>;
    const spanId = text(parsed.spanId);
    const name = text(span.name);
    if (spanId === undefined || name === undefined) return undefined;
    return {
      ...common,
      spanId,
      kind: "span",
      name,
      ...optional("subscriber", text(span.subscriber)),
      ...optional("startedAt", text(span.startedAt)),
      ...optional("endedAt", text(span.endedAt)),
    };
  }
  if (parsed.kind === "outcome") {
    const outcome = (parsed.outcome ?? {}) as Record<string, unknown>;
    return {
      ...common,
      spanId: outcomeItemKey(commandId),
      kind: "outcome",
      ...optional("command", text(outcome.command)),
      ...optional("status", text(outcome.status)),
    };
  }
  return undefined;
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
