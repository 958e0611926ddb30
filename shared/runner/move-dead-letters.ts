/**
 * `canon dlq move <queue>`: sends a queue's dead letters back to it, in order, once the cause
 * is fixed — a command whose handler kept failing (its outcome stays `pending` until then), a
 * reactor's message. A FIFO queue's messages go back in their message group, one at a time in
 * the order the dead-letter queue gives them (a group's next message is only received once
 * the one before is deleted), so a group's order is kept. Each carries a deduplication id
 * derived from its message id: a move interrupted after a send and retried sends it once.
 * A projection's dead letters are rare (it parks events in its table first, and those are
 * redriven with `canon dlq redrive`); they may be moved back too, its version checks absorb
 * what was applied already.
 */
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import { sqsClient } from "../aws/clients.ts";
import { RedriveRefusedError } from "./dead-letters.ts";
import type { LocalEndpoints } from "./endpoints.ts";

export interface MoveOutcome {
  readonly queue: string;
  readonly moved: number;
  /** Messages still in the dead-letter queue (more than `max`, or arrived meanwhile). */
  readonly left: number;
}

/** How long a received dead letter stays invisible while it is sent back. */
const movingVisibilitySeconds = 60;

/** Only string, number and binary attributes with a value travel back (SQS refuses empty ones). */
function attributesOf(message: Message): Record<string, MessageAttributeValue> | undefined {
  const entries = Object.entries(message.MessageAttributes ?? {}).filter(
    ([, value]) => value.DataType !== undefined && (value.StringValue !== undefined || value.BinaryValue !== undefined),
  );
  if (entries.length === 0) return undefined;
  return Object.fromEntries(
    entries.map(([name, value]) => [
      name,
      {
        DataType: value.DataType,
        ...(value.StringValue === undefined ? {} : { StringValue: value.StringValue }),
        ...(value.BinaryValue === undefined ? {} : { BinaryValue: value.BinaryValue }),
      },
    ]),
  );
}

/** Moves up to `max` dead letters of a planned queue back to it. */
export async function moveDeadLetters(
  endpoints: LocalEndpoints,
  queueId: string,
  options: { readonly max?: number } = {},
): Promise<MoveOutcome> {
  const queue = endpoints.queues.find((q) => q.id === queueId);
  if (queue === undefined) {
    const known = endpoints.queues.filter((q) => !q.failures).map((q) => q.id);
    throw new RedriveRefusedError(`unknown queue "${queueId}" (known: ${known.join(", ")})`);
  }
  if (queue.failures) {
    throw new RedriveRefusedError(
      `${queueId} is a failure destination that no function consumes: its messages are records to read ` +
        "(`canon dlq list`), not work to retry",
    );
  }
  const max = options.max ?? 1_000;
  if (!Number.isInteger(max) || max < 1) throw new RedriveRefusedError(`max must be a positive integer, not ${max}`);
  const fifo = queue.url.endsWith(".fifo");
  let moved = 0;
  while (moved < max) {
    const { Messages = [] } = await sqsClient().send(
      new ReceiveMessageCommand({
        QueueUrl: queue.deadLetterQueueUrl,
        MaxNumberOfMessages: Math.min(10, max - moved),
        VisibilityTimeout: movingVisibilitySeconds,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ["MessageGroupId"],
        MessageAttributeNames: ["All"],
      }),
    );
    if (Messages.length === 0) break;
    for (const message of Messages) {
      const group = message.Attributes?.MessageGroupId;
      await sqsClient().send(
        new SendMessageCommand({
          QueueUrl: queue.url,
          MessageBody: message.Body ?? "",
          MessageAttributes: attributesOf(message),
          ...(fifo
            ? {
                MessageGroupId: group ?? "moved",
                MessageDeduplicationId: `moved-${message.MessageId ?? ""}`.slice(0, 128),
              }
            : {}),
        }),
      );
      await sqsClient().send(
        new DeleteMessageCommand({ QueueUrl: queue.deadLetterQueueUrl, ReceiptHandle: message.ReceiptHandle }),
      );
      moved += 1;
    }
  }
  const { Attributes } = await sqsClient().send(
    new GetQueueAttributesCommand({
      QueueUrl: queue.deadLetterQueueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  const left =
    Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  return { queue: queueId, moved, left };
}
