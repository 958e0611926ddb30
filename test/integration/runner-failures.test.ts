/**
 * The local runner plays the AWS event source mappings' failure semantics, over the wire:
 * partial batch failures, retries, the dead-letter queue after maxReceiveCount (SQS), and
 * bisect, retry attempts and the on-failure destination (Kinesis).
 */
import { CreateStreamCommand, PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { PublishBatchCommand } from "@aws-sdk/client-sns";
import { CreateQueueCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { KinesisStreamEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient, kinesisClient, snsClient, sqsClient } from "../../shared/aws/clients.ts";
import { buildCommit } from "../../shared/events/envelope.ts";
import { type LocalCloud, startLocalCloud } from "../../shared/local-cloud/cloud.ts";
import { type ProvisionedResources, provision } from "../../shared/local-cloud/provision.ts";
import { planApp } from "../../shared/plan.ts";
import { runKinesisSource } from "../../shared/runner/kinesis-source.ts";
import { type Runner, startRunner } from "../../shared/runner/runner.ts";
import { flakyApp } from "../fixtures/flaky-app.ts";
import { removeDataDir, repoRoot, tempDataDir, waitFor } from "../support/system.ts";

const dataDir = tempDataDir("runner");
let cloud: LocalCloud;
let resources: ProvisionedResources;
let runner: Runner | undefined;
const plan = planApp(flakyApp);

beforeAll(async () => {
  cloud = await startLocalCloud({ dataDir });
  Object.assign(process.env, cloud.env);
  resources = await provision(plan);
});

afterAll(async () => {
  await runner?.stop();
  await cloud?.stop();
  removeDataDir(dataDir);
});

function thing(subject: string, version: number, poison = false) {
  return buildCommit(
    "events",
    {
      commandId: `cmd-${subject}-${version}`,
      attempt: 1,
      service: "things",
      bus: "core",
      aggregateType: "Thing",
      aggregateId: subject,
      expectedVersion: version - 1,
      correlationId: "c",
      causationId: "c",
      now: new Date("2026-01-01T00:00:00Z"),
    },
    [{ type: "ThingHappened", data: { poison } }],
  ).events[0] as ReturnType<typeof buildCommit>["events"][number];
}

describe("an SQS event source mapping", () => {
  it("processes the good records of a batch, retries the failing one, then dead-letters it", async () => {
    runner = await startRunner({ plan, resources, baseEnv: cloud.env, repoRoot, retryDelaySeconds: 1 });
    const topicArn = resources.topicArns.get("core") as string;
    const events = [thing("a", 1), thing("b", 1, true), thing("c", 1)];
    await snsClient().send(
      new PublishBatchCommand({
        TopicArn: topicArn,
        PublishBatchRequestEntries: events.map((event, i) => ({
          Id: String(i),
          Message: JSON.stringify(event),
          MessageGroupId: `Thing#${event.subject}`,
          MessageDeduplicationId: event.id,
          MessageAttributes: { type: { DataType: "String", StringValue: event.type } },
        })),
      }),
    );
    const table = resources.tableNames.get("things-flaky") as string;
    const item = (id: string) => dynamoClient().send(new GetCommand({ TableName: table, Key: { id } }));
    for (const good of [events[0], events[2]]) {
      await waitFor(async () => (await item(good?.id ?? "")).Item, `event ${good?.id} applied`);
    }
    const dlqUrl = resources.deadLetterQueueUrls.get("things-flaky") as string;
    const deadLettered = await waitFor(async () => {
      const received = await sqsClient().send(
        new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      return received.Messages?.[0];
    }, "the poison event in the dead-letter queue");
    expect(JSON.parse(deadLettered.Body ?? "{}").id).toBe(events[1]?.id);
    // maxReceiveCount is 3: three attempts, then the queue moved it.
    const attempts = await item(`attempts#${events[1]?.id}`);
    expect(attempts.Item?.attempts).toBe(3);
    expect((await item(events[1]?.id ?? "")).Item).toBeUndefined();
    for (const good of [events[0], events[2]]) expect((await item(`attempts#${good?.id}`)).Item?.attempts).toBe(1);
  });
});

describe("a Kinesis event source mapping", () => {
  it("bisects a failing batch, retries, sends the poison record's batch to the on-failure queue and moves on", async () => {
    const streamName = "runner-test-stream";
    await kinesisClient().send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 1 }));
    await waitFor(async () => {
      try {
        await kinesisClient().send(
          new PutRecordsCommand({
            StreamName: streamName,
            Records: Array.from({ length: 8 }, (_, i) => ({
              PartitionKey: "p",
              Data: Buffer.from(i === 5 ? "poison" : `r${i}`),
            })),
          }),
        );
        return true;
      } catch {
        return undefined; // the stream is still being created
      }
    }, "records put");
    const failureQueue = await sqsClient().send(new CreateQueueCommand({ QueueName: "runner-test-failures" }));
    const checkpointTable = `${plan.prefix}-local-runner-checkpoints`;
    const seen: string[][] = [];
    const handled: string[] = [];
    let stopping = false;
    const handler = async (event: KinesisStreamEvent) => {
      const batch = event.Records.map((r) => Buffer.from(r.kinesis.data, "base64").toString());
      seen.push(batch);
      if (batch.includes("poison")) throw new Error("cannot handle poison");
      handled.push(...batch);
      return { batchItemFailures: [] };
    };
    const run = runKinesisSource(
      {
        functionName: "runner-test",
        streamName,
        streamArn: `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName}`,
        batchSize: 8,
        bisectBatchOnError: true,
        maxRetryAttempts: 2,
        onFailureQueueUrl: failureQueue.QueueUrl as string,
        checkpointTable,
        pollIntervalMs: 50,
        isStopping: () => stopping,
      },
      handler,
    );
    const failure = await waitFor(async () => {
      const received = await sqsClient().send(
        new ReceiveMessageCommand({ QueueUrl: failureQueue.QueueUrl, WaitTimeSeconds: 1 }),
      );
      return received.Messages?.[0];
    }, "the on-failure message");
    await waitFor(async () => (handled.includes("r7") ? true : undefined), "records after the poison handled");
    stopping = true;
    await run;

    // Bisected down to the poison record alone: tried once, then twice more (maxRetryAttempts = 2).
    expect(seen[0]).toHaveLength(8);
    expect(seen.filter((batch) => batch.length === 1 && batch[0] === "poison")).toHaveLength(3);
    expect(new Set(handled)).toEqual(new Set(["r0", "r1", "r2", "r3", "r4", "r6", "r7"]));
    const body = JSON.parse(failure.Body ?? "{}");
    expect(body.KinesisBatchInfo.batchSize).toBe(1);
    expect(body.requestContext.condition).toBe("RetryAttemptsExhausted");
    expect(body.requestContext.reason).toBe("cannot handle poison");
  });
});
