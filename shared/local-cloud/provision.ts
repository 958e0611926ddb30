/**
 * Creates the plan's resources in the local cloud (or LocalStack), idempotently: streams,
 * FIFO topics, FIFO queues with their dead-letter queues, subscriptions with filter policies,
 * tables, and each bus's archive bucket. Returns the physical names and addresses.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  IncreaseStreamRetentionPeriodCommand,
} from "@aws-sdk/client-kinesis";
import { CreateBucketCommand, PutBucketVersioningCommand } from "@aws-sdk/client-s3";
import {
  CreateTopicCommand,
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  SetSubscriptionAttributesCommand,
  SubscribeCommand,
  type Subscription,
  UnsubscribeCommand,
} from "@aws-sdk/client-sns";
import { CreateQueueCommand, GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { localSinkFailureQueueId } from "../analytics/local-sink.ts";
import { kinesisClient, s3Client, snsClient, sqsClient } from "../aws/clients.ts";
import { isAwsError } from "../aws/errors.ts";
import { createTableIfMissing } from "../aws/tables.ts";
import type { AppPlan, PlannedFunction, ResourceRef } from "../plan.ts";
import { privacyEnv, subjectKeysTableName } from "../privacy/env.ts";

export interface ProvisionedResources {
  readonly streamNames: ReadonlyMap<string, string>;
  readonly streamArns: ReadonlyMap<string, string>;
  readonly topicArns: ReadonlyMap<string, string>;
  readonly queueUrls: ReadonlyMap<string, string>;
  readonly deadLetterQueueUrls: ReadonlyMap<string, string>;
  readonly tableNames: ReadonlyMap<string, string>;
  readonly archiveBuckets: ReadonlyMap<string, string>;
  /** The app's subject keys (shared/privacy/keys.ts), read and written by every function. */
  readonly subjectKeysTable?: string;
}

export async function provision(plan: AppPlan): Promise<ProvisionedResources> {
  const streamNames = new Map<string, string>();
  const streamArns = new Map<string, string>();
  const topicArns = new Map<string, string>();
  const queueUrls = new Map<string, string>();
  const deadLetterQueueUrls = new Map<string, string>();
  const tableNames = new Map<string, string>();
  const archiveBuckets = new Map<string, string>();

  await Promise.all([
    ...plan.streams.map(async (stream) => {
      await ignoreExists(() =>
        kinesisClient().send(new CreateStreamCommand({ StreamName: stream.name, ShardCount: stream.shards })),
      );
      const arn = await waitActive(stream.name);
      if (stream.retentionHours > 24) {
        await ignoreExists(
          () =>
            kinesisClient().send(
              new IncreaseStreamRetentionPeriodCommand({
                StreamName: stream.name,
                RetentionPeriodHours: stream.retentionHours,
              }),
            ),
          ["InvalidArgumentException"], // already at that retention
        );
      }
      streamNames.set(stream.bus, stream.name);
      streamArns.set(stream.bus, arn);
    }),
    ...plan.tables.map(async (table) => {
      if (table.sortKey === undefined) await createTableIfMissing(table.name, table.partitionKey);
      else await createSortedTableIfMissing(table.name, table.partitionKey, table.sortKey);
      tableNames.set(table.id, table.name);
    }),
    // A telemetry bus's Parquet files (the local sink plays Firehose into it): expiry is AWS's.
    ...plan.telemetry.map(({ bucket }) =>
      ignoreExists(() => s3Client().send(new CreateBucketCommand({ Bucket: bucket }))),
    ),
    createTableIfMissing(subjectKeysTableName(plan.prefix)),
    ...plan.buckets.map(async ({ bus, name: bucket }) => {
      await ignoreExists(() => s3Client().send(new CreateBucketCommand({ Bucket: bucket })));
      await s3Client().send(
        new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: "Enabled" } }),
      );
      archiveBuckets.set(bus, bucket);
    }),
  ]);

  for (const topic of plan.topics) {
    const created = await snsClient().send(
      new CreateTopicCommand({
        Name: topic.name,
        Attributes: { FifoTopic: "true", ContentBasedDeduplication: "false" },
      }),
    );
    topicArns.set(topic.bus, required(created.TopicArn, `topic ${topic.name}`));
  }

  const queueArns = new Map<string, string>();
  await Promise.all([
    ...plan.queues.map(async (queue) => {
      const dlq = await createQueue(queue.deadLetterQueueName, queue.fifo, {});
      const main = await createQueue(queue.name, queue.fifo, {
        VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: String(queue.maxReceiveCount) }),
      });
      queueUrls.set(queue.id, main.url);
      queueArns.set(queue.id, main.arn);
      deadLetterQueueUrls.set(queue.id, dlq.url);
    }),
    // The local sink's on-failure destination (local only: on AWS the delivery stream has none).
    ...plan.telemetry.map(async ({ bus }) => {
      const failures = await createQueue(`${plan.prefix}-${localSinkFailureQueueId(bus)}`, false, {});
      queueUrls.set(localSinkFailureQueueId(bus), failures.url);
    }),
  ]);

  await reconcileSubscriptions(plan, topicArns, queueArns);

  return {
    streamNames,
    streamArns,
    topicArns,
    queueUrls,
    deadLetterQueueUrls,
    tableNames,
    archiveBuckets,
    subjectKeysTable: subjectKeysTableName(plan.prefix),
  };
}

/**
 * Makes each bus topic's subscriptions match the plan, as a deploy would: a planned queue is
 * subscribed with its filter policy (updated if the declaration's event types changed), and a
 * queue of this app (named with its prefix) that the plan no longer holds — a projection
 * removed, a generation retired — is unsubscribed, so it stops buffering. Other apps' are left.
 */
async function reconcileSubscriptions(
  plan: AppPlan,
  topicArns: ReadonlyMap<string, string>,
  queueArns: ReadonlyMap<string, string>,
): Promise<void> {
  for (const [bus, topicArn] of topicArns) {
    const wanted = new Map(
      plan.subscriptions
        .filter((s) => s.bus === bus)
        .map((s) => [required(queueArns.get(s.queueId), `queue ${s.queueId}`), filterPolicy(s.eventTypes)]),
    );
    const existing: Subscription[] = [];
    let token: string | undefined;
    do {
      const page = await snsClient().send(
        new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, NextToken: token }),
      );
      existing.push(...(page.Subscriptions ?? []));
      token = page.NextToken;
    } while (token);
    for (const subscription of existing) {
      const arn = subscription.SubscriptionArn;
      const endpoint = subscription.Endpoint ?? "";
      if (subscription.Protocol !== "sqs" || arn === undefined || !arn.startsWith("arn:")) continue;
      const policy = wanted.get(endpoint);
      if (policy === undefined) {
        const queueName = endpoint.split(":").at(-1) ?? "";
        if (queueName.startsWith(`${plan.prefix}-`)) {
          await snsClient().send(new UnsubscribeCommand({ SubscriptionArn: arn }));
        }
        continue;
      }
      wanted.delete(endpoint);
      const { Attributes } = await snsClient().send(new GetSubscriptionAttributesCommand({ SubscriptionArn: arn }));
      if (Attributes?.FilterPolicy === undefined || !samePolicy(Attributes.FilterPolicy, policy)) {
        await snsClient().send(
          new SetSubscriptionAttributesCommand({
            SubscriptionArn: arn,
            AttributeName: "FilterPolicy",
            AttributeValue: policy,
          }),
        );
      }
    }
    for (const [queueArn, policy] of wanted) {
      await snsClient().send(
        new SubscribeCommand({
          TopicArn: topicArn,
          Protocol: "sqs",
          Endpoint: queueArn,
          Attributes: { RawMessageDelivery: "true", FilterPolicyScope: "MessageAttributes", FilterPolicy: policy },
        }),
      );
    }
  }
}

/** A subscription's filter policy: the event types it takes, by the `type` message attribute. */
function filterPolicy(eventTypes: readonly string[]): string {
  return JSON.stringify({ type: [...eventTypes].sort() });
}

function samePolicy(current: string, wanted: string): boolean {
  try {
    const types = (JSON.parse(current) as { type?: unknown }).type;
    return Array.isArray(types) && JSON.stringify({ type: [...types].sort() }) === wanted;
  } catch {
    return false;
  }
}

/** A function's environment with every resource reference resolved to a local name or address. */
export function resolveEnv(fn: PlannedFunction, resources: ProvisionedResources): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, ref] of Object.entries(fn.env)) env[name] = resolveRef(ref, resources);
  if (resources.subjectKeysTable !== undefined) env[privacyEnv.keysTable] = resources.subjectKeysTable;
  return env;
}

function resolveRef(ref: ResourceRef, r: ProvisionedResources): string {
  switch (ref.kind) {
    case "value":
      return ref.value;
    case "table":
      return required(r.tableNames.get(ref.id), `table ${ref.id}`);
    case "queue":
      return required(r.queueUrls.get(ref.id), `queue ${ref.id}`);
    case "stream":
      return required(r.streamNames.get(ref.bus), `stream of bus ${ref.bus}`);
    case "topic":
      return required(r.topicArns.get(ref.bus), `topic of bus ${ref.bus}`);
    case "bucket":
      return required(r.archiveBuckets.get(ref.bus), `archive of bus ${ref.bus}`);
  }
}

async function createQueue(
  name: string,
  fifo: boolean,
  attributes: Record<string, string>,
): Promise<{ url: string; arn: string }> {
  const created = await sqsClient().send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: { ...(fifo ? { FifoQueue: "true", ContentBasedDeduplication: "false" } : {}), ...attributes },
    }),
  );
  const url = required(created.QueueUrl, `queue ${name}`);
  const attrs = await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
  return { url, arn: required(attrs.Attributes?.QueueArn, `arn of queue ${name}`) };
}

async function waitActive(streamName: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const summary = await kinesisClient().send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    const description = summary.StreamDescriptionSummary;
    if (description?.StreamStatus === "ACTIVE") return required(description.StreamARN, "stream arn");
    await sleep(50);
  }
  throw new Error(`stream ${streamName} did not become ACTIVE`);
}

/**
 * A table with a string sort key (the journeys index). Locally without its time to live: dynalite
 * has none, so local spans stay until the data folder goes.
 */
async function createSortedTableIfMissing(name: string, partitionKey: string, sortKey: string): Promise<void> {
  const dynamo = new DynamoDBClient({ region: process.env.AWS_REGION ?? "us-east-1" });
  try {
    await ignoreExists(() =>
      dynamo.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [
            { AttributeName: partitionKey, AttributeType: "S" },
            { AttributeName: sortKey, AttributeType: "S" },
          ],
          KeySchema: [
            { AttributeName: partitionKey, KeyType: "HASH" },
            { AttributeName: sortKey, KeyType: "RANGE" },
          ],
        }),
      ),
    );
  } finally {
    dynamo.destroy();
  }
}

const alreadyExists = ["ResourceInUseException", "BucketAlreadyOwnedByYou", "BucketAlreadyExists"];

/** Runs a create call, treating "it is already there" (the names given) as success. */
async function ignoreExists(create: () => Promise<unknown>, names: readonly string[] = alreadyExists): Promise<void> {
  try {
    await create();
  } catch (error) {
    if (!names.some((name) => isAwsError(error, name))) throw error;
  }
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`provisioning: no ${what}`);
  return value;
}
