/**
 * The local SQS hands out FIFO batches as SQS does: several messages of one message group in one
 * receive, in order, and none of that group to anyone else while they are in flight. A command
 * handler's group commit (and a hot aggregate's throughput) rests on it.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from "@aws-sdk/client-sqs";
import { beforeAll, describe, expect, it } from "vitest";
import { sqsClient } from "../../shared/aws/clients.ts";
import { useLocalCloud } from "../support/system.ts";

useLocalCloud("fifo-batches");
let queueUrl: string;

beforeAll(async () => {
  const created = await sqsClient().send(
    new CreateQueueCommand({ QueueName: "batches.fifo", Attributes: { FifoQueue: "true", VisibilityTimeout: "30" } }),
  );
  queueUrl = created.QueueUrl as string;
});

const send = (group: string, bodies: string[]) =>
  sqsClient().send(
    new SendMessageBatchCommand({
      QueueUrl: queueUrl,
      Entries: bodies.map((body) => ({
        Id: body,
        MessageBody: body,
        MessageGroupId: group,
        MessageDeduplicationId: body,
      })),
    }),
  );

const receive = async (): Promise<Message[]> =>
  (
    await sqsClient().send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    )
  ).Messages ?? [];

describe("FIFO receives on the local SQS", () => {
  it("takes several messages of one group in one receive, in order, and locks the group while they are in flight", async () => {
    await send("hot", ["h1", "h2", "h3", "h4", "h5"]);
    await send("other", ["o1", "o2"]);
    const first = await receive();
    expect(first.filter((m) => m.Body?.startsWith("h")).map((m) => m.Body)).toEqual(["h1", "h2", "h3", "h4", "h5"]);
    expect(first.filter((m) => m.Body?.startsWith("o")).map((m) => m.Body)).toEqual(["o1", "o2"]);

    await send("hot", ["h6", "h7"]);
    // h6 and h7 wait behind h1–h5 in flight: nobody else may take them out of order.
    expect(await receive()).toEqual([]);

    await sqsClient().send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: first.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
    expect((await receive()).map((m) => m.Body)).toEqual(["h6", "h7"]);
  });

  it("puts messages whose visibility ended back in their order", async () => {
    await send("back", ["b1", "b2", "b3", "b4"]);
    const first = (await receive()).filter((m) => m.Body?.startsWith("b"));
    expect(first.map((m) => m.Body)).toEqual(["b1", "b2", "b3", "b4"]);
    await sqsClient().send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: first.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 1 })),
      }),
    );
    // (Not 0: fauxqs with persistence loses a message made visible at once; see sqs-source.ts.)
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect((await receive()).filter((m) => m.Body?.startsWith("b")).map((m) => m.Body)).toEqual([
      "b1",
      "b2",
      "b3",
      "b4",
    ]);
  });
});
