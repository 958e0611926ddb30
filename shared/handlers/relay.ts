/**
 * The relay: the bus stream → the bus topic (SNS FIFO), arbitrating as it goes.
 *
 * A batch is arbitrated in stream order against the persisted aggregate heads, its accepted
 * events are published in order, and only then are the new heads persisted. Arbitration is a
 * pure function of (persisted heads, records), so a retry of the batch reaches the same
 * verdicts and publishes the same events again (deduplicated by event id): nothing accepted is
 * ever skipped, nothing lost is ever published. A malformed record goes to the relay's
 * dead-letter queue with its reason; the rest of the batch proceeds.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { PublishBatchCommand, type PublishBatchRequestEntry } from "@aws-sdk/client-sns";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { BatchGetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { KinesisStreamBatchResponse, KinesisStreamHandler, KinesisStreamRecord } from "aws-lambda";
import { dynamoClient, snsClient, sqsClient } from "../aws/clients.ts";
import { requireEnv } from "../env.ts";
import { type AggregateHead, aggregateKey, arbitrateRun, type Verdict } from "../events/arbitrate.ts";
import { type Commit, type EventEnvelope, maxInlineEventBytes, parseCommit } from "../events/envelope.ts";
import { envNames } from "../plan.ts";

const logger = new Logger({ serviceName: "canon-relay" });

interface Config {
  readonly bus: string;
  readonly topicArn: string;
  readonly arbitrationTable: string;
  readonly deadLetterQueueUrl: string;
}

let config: Config | undefined;

/** The relay's Lambda handler (Kinesis event source, ReportBatchItemFailures). */
export const relayHandler: KinesisStreamHandler = async (event): Promise<KinesisStreamBatchResponse> => {
  config ??= {
    bus: requireEnv(envNames.bus),
    topicArn: requireEnv(envNames.topicArn),
    arbitrationTable: requireEnv(envNames.arbitrationTable),
    deadLetterQueueUrl: requireEnv(envNames.deadLetterQueueUrl),
  };
  return relayBatch(config, event.Records);
};

interface Step {
  readonly record: KinesisStreamRecord;
  readonly publish: readonly EventEnvelope[];
  /** The aggregate head after this record (when it changed one). */
  readonly head?: { readonly key: string; readonly value: AggregateHead };
}

async function relayBatch(
  config: Config,
  records: readonly KinesisStreamRecord[],
): Promise<KinesisStreamBatchResponse> {
  const steps: Step[] = [];
  const commits = new Map<KinesisStreamRecord, Commit>();
  for (const record of records) {
    const commit = await parseOrDeadLetter(config, record);
    if (commit !== undefined) commits.set(record, commit);
  }
  const persisted = await loadHeads(config, [...new Set([...commits.values()].map(aggregateKey))]);
  const parsed = records.map((record) => commits.get(record));
  const { verdicts } = arbitrateRun(
    persisted,
    parsed.filter((c): c is Commit => c !== undefined),
  );
  let next = 0;
  for (const [index, record] of records.entries()) {
    const commit = parsed[index];
    if (commit === undefined) {
      steps.push({ record, publish: [] });
      continue;
    }
    const verdict = verdicts[next++] as Verdict;
    switch (verdict.verdict) {
      case "accepted":
        steps.push({ record, publish: commit.events, head: { key: aggregateKey(commit), value: verdict.head } });
        break;
      case "duplicate":
      case "unversioned":
        steps.push({ record, publish: commit.events });
        break;
      case "conflict":
        logger.info("commit lost arbitration", {
          commitId: commit.commitId,
          aggregate: aggregateKey(commit),
          expectedVersion: commit.expectedVersion,
          currentVersion: verdict.currentVersion,
        });
        steps.push({ record, publish: [] });
        break;
    }
  }

  const published = await publishInOrder(config, steps);
  await persistHeads(config, steps.slice(0, published), persisted);
  if (published < steps.length) {
    const failed = steps[published]?.record.kinesis.sequenceNumber ?? "";
    return { batchItemFailures: [{ itemIdentifier: failed }] };
  }
  return { batchItemFailures: [] };
}

async function parseOrDeadLetter(config: Config, record: KinesisStreamRecord): Promise<Commit | undefined> {
  const bytes = Buffer.from(record.kinesis.data, "base64");
  let reason: string | undefined;
  let commit: Commit | undefined;
  try {
    commit = parseCommit(bytes);
    const large = commit.events.find((e) => Buffer.byteLength(JSON.stringify(e)) > maxInlineEventBytes);
    if (large !== undefined) reason = `event ${large.id} exceeds ${maxInlineEventBytes} bytes`;
  } catch (error) {
    reason = error instanceof Error ? error.message : String(error);
  }
  if (reason === undefined) return commit;
  logger.error("record sent to the dead-letter queue", { reason, sequenceNumber: record.kinesis.sequenceNumber });
  await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: config.deadLetterQueueUrl,
      MessageBody: JSON.stringify({
        reason,
        bus: config.bus,
        eventSourceARN: record.eventSourceARN,
        eventID: record.eventID,
        partitionKey: record.kinesis.partitionKey,
        sequenceNumber: record.kinesis.sequenceNumber,
        approximateArrivalTimestamp: record.kinesis.approximateArrivalTimestamp,
        // Keep the bytes (up to what a message holds) so nothing is lost to the operator.
        data: record.kinesis.data.slice(0, 200_000),
        truncated: record.kinesis.data.length > 200_000,
      }),
    }),
  );
  return undefined;
}

async function loadHeads(config: Config, keys: readonly string[]): Promise<Map<string, AggregateHead>> {
  const heads = new Map<string, AggregateHead>();
  for (let i = 0; i < keys.length; i += 100) {
    let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> | undefined = {
      [config.arbitrationTable]: { Keys: keys.slice(i, i + 100).map((id) => ({ id })), ConsistentRead: true },
    };
    while (request !== undefined && Object.keys(request).length > 0) {
      const result = await dynamoClient().send(new BatchGetCommand({ RequestItems: request }));
      for (const item of result.Responses?.[config.arbitrationTable] ?? []) {
        heads.set(String(item.id), { version: Number(item.version), lastCommitId: String(item.lastCommitId) });
      }
      request = result.UnprocessedKeys as typeof request;
    }
  }
  return heads;
}

/** Publishes the steps' events in order, 10 per call; returns how many steps went out whole. */
async function publishInOrder(config: Config, steps: readonly Step[]): Promise<number> {
  const entries: { step: number; entry: PublishBatchRequestEntry }[] = [];
  steps.forEach((step, index) => {
    for (const event of step.publish) entries.push({ step: index, entry: toEntry(event, entries.length, config.bus) });
  });
  let firstUnpublishedStep = steps.length;
  for (let i = 0; i < entries.length; i += 10) {
    const chunk = entries.slice(i, i + 10);
    let failedAt: number | undefined;
    try {
      const result = await snsClient().send(
        new PublishBatchCommand({ TopicArn: config.topicArn, PublishBatchRequestEntries: chunk.map((c) => c.entry) }),
      );
      const failedIds = new Set((result.Failed ?? []).map((f) => f.Id));
      const firstFailed = chunk.findIndex((c) => failedIds.has(c.entry.Id));
      if (firstFailed >= 0) {
        logger.warn("publish failed", { failed: result.Failed });
        failedAt = firstFailed;
      }
    } catch (error) {
      logger.warn("publish failed", { error });
      failedAt = 0;
    }
    if (failedAt !== undefined) {
      firstUnpublishedStep = chunk[failedAt]?.step ?? firstUnpublishedStep;
      break;
    }
  }
  return firstUnpublishedStep;
}

function toEntry(event: EventEnvelope, index: number, bus: string): PublishBatchRequestEntry {
  return {
    Id: `e${index}`,
    Message: JSON.stringify(event),
    MessageGroupId: `${event.aggregatetype}#${event.subject}`,
    MessageDeduplicationId: event.id,
    MessageAttributes: {
      type: { DataType: "String", StringValue: event.type },
      aggregateType: { DataType: "String", StringValue: event.aggregatetype },
      bus: { DataType: "String", StringValue: bus },
    },
  };
}

/** Persists the last head each aggregate reached in the published steps, conditionally. */
async function persistHeads(
  config: Config,
  steps: readonly Step[],
  persisted: ReadonlyMap<string, AggregateHead>,
): Promise<void> {
  const last = new Map<string, AggregateHead>();
  for (const step of steps) if (step.head) last.set(step.head.key, step.head.value);
  await Promise.all(
    [...last].map(([id, head]) => {
      const before = persisted.get(id);
      return dynamoClient().send(
        new UpdateCommand({
          TableName: config.arbitrationTable,
          Key: { id },
          UpdateExpression: "SET version = :version, lastCommitId = :commit",
          ConditionExpression: before === undefined ? "attribute_not_exists(id)" : "version = :before",
          ExpressionAttributeValues: {
            ":version": head.version,
            ":commit": head.lastCommitId,
            ...(before === undefined ? {} : { ":before": before.version }),
          },
        }),
      );
    }),
  );
}
