/**
 * Plays an SQS event source mapping locally: long-polls the queue, hands the batch to the
 * handler as a real `SQSEvent`, deletes what succeeded, and returns the reported failures to
 * the queue after the retry delay (the visibility timeout, shortened locally). The queue's own
 * redrive policy moves a message to its dead-letter queue after `maxReceiveCount` receives.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { sqsClient } from "../aws/clients.ts";
import { localContext } from "./lambda-context.ts";

export interface SqsSourceOptions {
  readonly functionName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly batchSize: number;
  /** Seconds before a failed message is received again. */
  readonly retryDelaySeconds: number;
  readonly isStopping: () => boolean;
}

export type SqsLambda = (
  event: SQSEvent,
  context: ReturnType<typeof localContext>,
) => Promise<SQSBatchResponse | undefined>;

/** Polls until `isStopping()`; each batch is awaited before the next receive. */
export async function runSqsSource(options: SqsSourceOptions, handler: SqsLambda): Promise<void> {
  const sqs = sqsClient();
  while (!options.isStopping()) {
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

    const records = messages.map((m) => toRecord(m, options.queueArn));
    let failed: Set<string>;
    try {
      const response = await handler({ Records: records }, localContext(options.functionName, 30_000));
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (error) {
      console.error(`[${options.functionName}] invocation failed:`, (error as Error).message);
      failed = new Set(records.map((r) => r.messageId));
    }
    await settle(options, messages, failed);
  }
}

async function settle(options: SqsSourceOptions, messages: readonly Message[], failed: ReadonlySet<string>) {
  const sqs = sqsClient();
  const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
  const retry = messages.filter((m) => failed.has(m.MessageId ?? ""));
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
          VisibilityTimeout: options.retryDelaySeconds,
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
