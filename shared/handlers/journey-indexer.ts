/**
 * The journey indexer: the telemetry bus's stream → the journeys index (DynamoDB, key trace id +
 * span id, 7 days to live), so `GET /commands/{commandId}/trace` reads a command's hops with one
 * Query (shared/telemetry/journey.ts). It keeps the "span" records and each command's "outcome"
 * (its name and status, for the commands a reactor caused); the rest of the bus is for SQL.
 *
 * Idempotent: an item's key is what the record names (a hop's span id is derived from the hop),
 * so a retried batch, or a retried hop, writes the same items again. A record that is not
 * telemetry is logged and skipped: the bus is for measurements, never worth holding a shard for.
 */
import type { KinesisStreamBatchResponse, KinesisStreamHandler, KinesisStreamRecord } from "aws-lambda";
import { batchPutItems } from "../aws/batch.ts";
import { requireEnv } from "../env.ts";
import { functionLogger } from "../log.ts";
import { envNames, journeyRetentionDays } from "../plan.ts";
import { type JourneyItem, outcomeItemKey } from "../telemetry/journey.ts";

const logger = /* @__PURE__ */ functionLogger("journeys");

let table: string | undefined;

/** The journey indexer's Lambda handler (Kinesis event source on the telemetry stream). */
export const handler: KinesisStreamHandler = async (event): Promise<KinesisStreamBatchResponse> => {
  table ??= requireEnv(envNames.journeyTable);
  const items = new Map<string, JourneyItem>();
  const expiresAt = Math.floor(Date.now() / 1000) + journeyRetentionDays * 24 * 3600;
  for (const record of event.Records) {
    const item = journeyItem(record, expiresAt);
    // One write per key (BatchWriteItem refuses a key twice in a call); the last record stands.
    if (item !== undefined) items.set(`${item.traceId}\n${item.spanId}`, item);
  }
  await batchPutItems(table, [...items.values()] as unknown as Record<string, unknown>[]);
  return { batchItemFailures: [] };
};

/** The index item a stream record makes, if it is a span or an outcome with a trace. */
export function journeyItem(record: KinesisStreamRecord, expiresAt: number): JourneyItem | undefined {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(Buffer.from(record.kinesis.data, "base64").toString("utf8")) as Record<string, unknown>;
  } catch {
    logger.warn("telemetry record is not JSON; skipped", { sequenceNumber: record.kinesis.sequenceNumber });
    return undefined;
  }
  const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : undefined);
  const traceId = text(parsed.traceId);
  const commandId = text(parsed.commandId);
  if (traceId === undefined || commandId === undefined) return undefined;
  const common = {
    traceId,
    commandId,
    expiresAt,
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
