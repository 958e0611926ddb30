/**
 * Feeding a projection's own Lambda handler from a replay, as its queue would: SQS-shaped
 * records of a FIFO queue, grouped by aggregate, retried until applied (the handler parks what
 * keeps failing, as live).
 */
import type { SQSEvent, SQSHandler, SQSRecord } from "aws-lambda";
import type { EventEnvelope } from "../events/envelope.ts";
import { IncompleteError, isIncomplete, type RetryPolicy, retry } from "../retry.ts";
import { localContext } from "../runner/lambda-context.ts";

/** Deliveries of a batch before a replay fails loudly (waits from 0–400 ms, doubling), as a queue would redeliver. */
const deliveryRetry: RetryPolicy = { attempts: 5, baseMs: 400, retryable: isIncomplete };

/** Calls the handler until every event of the batch is applied (bounded retries, then fail loudly). */
export async function deliver(
  options: { readonly handler: SQSHandler; readonly name: string },
  batch: readonly EventEnvelope[],
): Promise<void> {
  let pending = batch;
  if (pending.length === 0) return;
  await retry(async (attempt) => {
    const event: SQSEvent = { Records: pending.map((e) => toRecord(e, attempt)) };
    let failed: Set<string>;
    try {
      const response = await options.handler(event, localContext(`replay-${options.name}`, 60_000), () => {});
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch {
      failed = new Set(pending.map((e) => e.id));
    }
    pending = pending.filter((e) => failed.has(e.id));
    if (pending.length === 0) return;
    throw new IncompleteError(
      `replay into ${options.name}: ${pending.length} events still failing after ${attempt} attempts (first: ${pending[0]?.id})`,
    );
  }, deliveryRetry);
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
