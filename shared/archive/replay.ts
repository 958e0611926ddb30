/**
 * The replay engine: feeds a projection its events from the archive, as its queue would. It
 * reads the archive in stream order per shard lineage, keeps only accepted events (the same
 * arbitration as the relay), upcasts them, and calls the projection's own Lambda handler with
 * SQS-shaped batches, aggregates spread over lanes (bounded concurrency, order kept per
 * aggregate). The projection's idempotency makes a replay safe to overlap with live traffic.
 */
import type { SQSEvent, SQSHandler, SQSRecord } from "aws-lambda";
import { arbiter, reachesReaders } from "../events/arbitrate.ts";
import type { EventEnvelope } from "../events/envelope.ts";
import { type Upcaster, upcast } from "../events/upcast.ts";
import { localContext } from "../runner/lambda-context.ts";
import { readArchivedRecords } from "./reader.ts";

export interface ReplayProgress {
  readonly done: number;
  readonly total: number;
  readonly eventsPerSecond: number;
  /** Seconds left at the current rate (undefined before the first batch). */
  readonly etaSeconds: number | undefined;
}

export interface ReplayOptions {
  readonly bucket: string;
  readonly bus: string;
  /** The projection's Lambda handler, with its environment pointing at the table to fill. */
  readonly handler: SQSHandler;
  readonly name: string;
  /** The event types the projection subscribes to (its filter policy). */
  readonly eventTypes: readonly string[];
  readonly upcasters: readonly Upcaster[];
  /** Aggregates processed at once. @default 4 */
  readonly lanes?: number;
  readonly onProgress?: (progress: ReplayProgress) => void;
}

/** The accepted events of a bus's archive that a projection subscribes to, in stream order. */
export async function acceptedEventsFromArchive(
  bucket: string,
  bus: string,
  eventTypes: readonly string[],
  upcasters: readonly Upcaster[],
): Promise<EventEnvelope[]> {
  const wanted = new Set(eventTypes);
  const run = arbiter();
  const events: EventEnvelope[] = [];
  for await (const record of readArchivedRecords(bucket, bus)) {
    const commit = record.commit;
    if (commit === undefined || !reachesReaders(run.judge(commit))) continue;
    for (const event of commit.events) if (wanted.has(event.type)) events.push(upcast(event, upcasters));
  }
  return events;
}

/** Replays the archive into a projection; resolves with the number of events applied. */
export async function replayIntoProjection(options: ReplayOptions): Promise<{ events: number; seconds: number }> {
  const started = Date.now();
  const events = await acceptedEventsFromArchive(options.bucket, options.bus, options.eventTypes, options.upcasters);
  const laneCount = Math.max(1, options.lanes ?? 4);
  const lanes: EventEnvelope[][] = Array.from({ length: laneCount }, () => []);
  for (const event of events) lanes[laneOf(`${event.aggregatetype}#${event.subject}`, laneCount)]?.push(event);
  let done = 0;
  const report = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = done / seconds;
    options.onProgress?.({
      done,
      total: events.length,
      eventsPerSecond: rate,
      etaSeconds: done === 0 ? undefined : (events.length - done) / rate,
    });
  };
  await Promise.all(
    lanes.map(async (lane) => {
      for (let i = 0; i < lane.length; i += 10) {
        const batch = lane.slice(i, i + 10);
        await deliver(options, batch);
        done += batch.length;
        report();
      }
    }),
  );
  report();
  return { events: events.length, seconds: (Date.now() - started) / 1000 };
}

/** Calls the handler until every event of the batch is applied (bounded retries, then fail loudly). */
export async function deliver(
  options: Pick<ReplayOptions, "handler" | "name">,
  batch: readonly EventEnvelope[],
): Promise<void> {
  let pending = batch;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const event: SQSEvent = { Records: pending.map((e) => toRecord(e, attempt)) };
    let failed: Set<string>;
    try {
      const response = await options.handler(event, localContext(`replay-${options.name}`, 60_000), () => {});
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch {
      failed = new Set(pending.map((e) => e.id));
    }
    pending = pending.filter((e) => failed.has(e.id));
    if (pending.length > 0 && attempt >= 5) {
      throw new Error(
        `replay into ${options.name}: ${pending.length} events still failing after ${attempt} attempts (first: ${pending[0]?.id})`,
      );
    }
    if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
  }
}

/** An event as its queue would deliver it: an SQS record of a FIFO queue, grouped by aggregate. */
export function toRecord(event: EventEnvelope, attempt: number): SQSRecord {
  const now = String(Date.now());
  return {
    messageId: event.id,
    receiptHandle: `replay-${event.id}`,
    body: JSON.stringify(event),
    attributes: {
      ApproximateReceiveCount: String(attempt),
      SentTimestamp: now,
      SenderId: "canon-replay",
      ApproximateFirstReceiveTimestamp: now,
      MessageGroupId: `${event.aggregatetype}#${event.subject}`,
      MessageDeduplicationId: event.id,
    },
    messageAttributes: {
      type: { dataType: "String", stringValue: event.type, stringListValues: [], binaryListValues: [] },
    },
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:local:000000000000:canon-replay",
    awsRegion: process.env.AWS_REGION ?? "us-east-1",
  };
}

/** A stable lane for an aggregate, so its events stay in order on one lane. */
export function laneOf(key: string, lanes: number): number {
  let hash = 0;
  for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) | 0;
  return Math.abs(hash) % lanes;
}
