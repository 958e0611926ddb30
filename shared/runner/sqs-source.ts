/**
 * Plays an SQS event source mapping locally: long-polls the queue, hands the batch to the
 * handler as a real `SQSEvent`, deletes what succeeded, and returns the reported failures to
 * the queue after the retry delay (the visibility timeout, shortened locally). The queue's own
 * redrive policy moves a message to its dead-letter queue after `maxReceiveCount` receives.
 * Like Lambda's scaling of an SQS mapping, it handles up to `maxConcurrency` batches at once: it
 * receives again while batches are in hand, and a FIFO queue never hands out a message group
 * that has messages in flight, so order per group holds. Idle, it keeps one long poll open.
 * With fault injection on (faults.ts), it also loses acks, crashes invocations after partial
 * work, replays acknowledged messages and delays redeliveries, as at-least-once delivery may.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { sqsClient } from "../aws/clients.ts";
import { type FaultKind, type FaultSpec, functionRandom, planSqsFaults } from "./faults.ts";
import { localContext } from "./lambda-context.ts";

export interface SqsSourceOptions {
  readonly functionName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly batchSize: number;
  /** Batches handled at once. @default 1 */
  readonly maxConcurrency?: number;
  /** Seconds before a failed message is received again. */
  readonly retryDelaySeconds: number;
  readonly isStopping: () => boolean;
  /** Faults to inject (none when undefined). */
  readonly faults?: FaultSpec;
  /** Told of every injected fault. */
  readonly onFault?: (kind: FaultKind) => void;
}

export type SqsLambda = (
  event: SQSEvent,
  context: ReturnType<typeof localContext>,
) => Promise<SQSBatchResponse | undefined>;

/** Polls until `isStopping()`, with up to `maxConcurrency` batches in hand; waits for them before it returns. */
export async function runSqsSource(options: SqsSourceOptions, handler: SqsLambda): Promise<void> {
  const sqs = sqsClient();
  const faulty: FaultState | undefined = options.faults && {
    spec: options.faults,
    random: functionRandom(options.faults.seed, options.functionName),
    acknowledged: [],
    replays: 0,
  };
  const inHand = new Set<Promise<void>>();
  const maxConcurrency = Math.max(1, options.maxConcurrency ?? 1);
  while (!options.isStopping()) {
    if (inHand.size >= maxConcurrency) {
      await Promise.race(inHand);
      continue;
    }
    let messages: Message[] = [];
    try {
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: options.queueUrl,
          MaxNumberOfMessages: options.batchSize,
          WaitTimeSeconds: 1,
          MessageAttributeNames: ["All"],
          MessageSystemAttributeNames: ["All"],
        }),
      );
      messages = received.Messages ?? [];
    } catch (error) {
      if (options.isStopping()) return;
      console.error(`[${options.functionName}] receive failed:`, (error as Error).message);
      await sleep(500);
      continue;
    }
    if (messages.length === 0) continue;
    const batch: Promise<void> = handleBatch(options, handler, faulty, messages).finally(() => inHand.delete(batch));
    inHand.add(batch);
  }
  await Promise.all(inHand);
}

/** One invocation: the handler, then the batch settled; never rejects. */
async function handleBatch(
  options: SqsSourceOptions,
  handler: SqsLambda,
  faulty: FaultState | undefined,
  messages: Message[],
): Promise<void> {
  const records = messages.map((m) => toRecord(m, options.queueArn));
  try {
    if (faulty === undefined) {
      const failed = await invoke(options, handler, records);
      await settle(options, messages, failed, new Set(), options.retryDelaySeconds);
    } else {
      await deliverWithFaults(options, handler, faulty, messages, records);
    }
  } catch (error) {
    // Deleting or returning the batch failed (SQS unreachable, a stale receipt handle): what was
    // not deleted comes back after its visibility timeout, as on AWS. Left unhandled, the
    // rejection would kill the worker and stop the consumer for good.
    if (options.isStopping()) return;
    console.error(
      `[${options.functionName}] settling a batch failed; it will be redelivered:`,
      (error as Error).message,
    );
    await sleep(500);
  }
}

/** Calls the handler; returns the ids of the records to retry (all of them if it threw). */
async function invoke(options: SqsSourceOptions, handler: SqsLambda, records: SQSRecord[]): Promise<Set<string>> {
  try {
    const response = await handler({ Records: records }, localContext(options.functionName, 30_000));
    return new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
  } catch (error) {
    console.error(`[${options.functionName}] invocation failed:`, (error as Error).message);
    return new Set(records.map((r) => r.messageId));
  }
}

interface FaultState {
  readonly spec: FaultSpec;
  readonly random: () => number;
  /** Recently acknowledged records, for replays. */
  readonly acknowledged: SQSRecord[];
  replays: number;
}

async function deliverWithFaults(
  options: SqsSourceOptions,
  handler: SqsLambda,
  state: FaultState,
  messages: readonly Message[],
  records: SQSRecord[],
): Promise<void> {
  const plan = planSqsFaults(
    state.spec,
    state.random,
    records.map((r) => Number(r.attributes.ApproximateReceiveCount)),
  );
  if (plan.crashAfter !== undefined) {
    options.onFault?.("crash");
    await invoke(options, handler, records.slice(0, plan.crashAfter));
    // The invocation "died": its result is lost, nothing is deleted, the whole batch comes back.
    await settle(options, messages, new Set(records.map((r) => r.messageId)), new Set(), plan.redeliverySeconds);
    return;
  }
  let delivered = records;
  const old = plan.replay ? state.acknowledged[Math.floor(state.random() * state.acknowledged.length)] : undefined;
  if (old !== undefined) {
    options.onFault?.("replay");
    state.replays += 1;
    // An earlier message again, ahead of the batch; not a queue message, so never deleted.
    delivered = [{ ...old, messageId: `${old.messageId}-replay-${state.replays}`, receiptHandle: "" }, ...records];
  }
  const failed = await invoke(options, handler, delivered);
  const kept = new Set(plan.keep.map((i) => records[i]?.messageId ?? "").filter((id) => id && !failed.has(id)));
  for (const _ of kept) options.onFault?.("duplicate");
  await settle(options, messages, failed, kept, plan.redeliverySeconds);
  for (const record of records) {
    if (failed.has(record.messageId) || kept.has(record.messageId)) continue;
    state.acknowledged.push(record);
    if (state.acknowledged.length > 100) state.acknowledged.shift();
  }
}

/**
 * Deletes what succeeded; what failed, and what `kept` names (a lost ack), is made visible again
 * after `retryDelaySeconds`.
 */
async function settle(
  options: SqsSourceOptions,
  messages: readonly Message[],
  failed: ReadonlySet<string>,
  kept: ReadonlySet<string>,
  retryDelaySeconds: number,
) {
  const sqs = sqsClient();
  const again = (m: Message) => failed.has(m.MessageId ?? "") || kept.has(m.MessageId ?? "");
  const done = messages.filter((m) => !again(m));
  const retry = messages.filter(again);
  if (done.length > 0) {
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
  if (retry.length > 0) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: retry.map((m, i) => ({
          Id: String(i),
          ReceiptHandle: m.ReceiptHandle,
          // Never 0: fauxqs with persistence fails on it after taking the message out of flight
          // (a NOT NULL column), which loses the message and locks its FIFO group for good.
          VisibilityTimeout: Math.max(1, retryDelaySeconds),
        })),
      }),
    );
  }
}

function toRecord(message: Message, queueArn: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  const messageAttributes: SQSRecord["messageAttributes"] = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: value.DataType ?? "String",
      stringValue: value.StringValue,
      binaryValue: value.BinaryValue ? Buffer.from(value.BinaryValue).toString("base64") : undefined,
      stringListValues: [],
      binaryListValues: [],
    };
  }
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? "1",
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? "local",
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      MessageGroupId: attributes.MessageGroupId,
      MessageDeduplicationId: attributes.MessageDeduplicationId,
      SequenceNumber: attributes.SequenceNumber,
    },
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: queueArn.split(":")[3] ?? "us-east-1",
  };
}
