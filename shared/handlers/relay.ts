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
import { PublishBatchCommand, type PublishBatchRequestEntry } from "@aws-sdk/client-sns";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { KinesisStreamBatchResponse, KinesisStreamHandler, KinesisStreamRecord } from "aws-lambda";
import { dynamoClient, snsClient, sqsClient } from "../aws/clients.ts";
import { requireEnv } from "../env.ts";
import { isCanonError } from "../errors.ts";
import { type AggregateHead, aggregateKey, arbitrateRun, type Verdict } from "../events/arbitrate.ts";
import { checkIn, eventClaimKey, maxInlineEventBytes } from "../events/claim-check.ts";
import { type Commit, type EventEnvelope, readCommit } from "../events/envelope.ts";
import { commandKeys, functionLogger } from "../log.ts";
import { envNames } from "../plan.ts";
import { flushingTelemetry, telemetry } from "../telemetry/emitter.ts";
import { hopSpan } from "../telemetry/spans.ts";
import { formatTraceparent, parseTraceparent } from "../telemetry/trace-context.ts";
import { readHeads } from "./arbitration-heads.ts";

const logger = /* @__PURE__ */ functionLogger("relay");

interface Config {
  readonly bus: string;
  readonly topicArn: string;
  readonly arbitrationTable: string;
  readonly deadLetterQueueUrl: string;
  /** Where events too large for a message go (claim checks). */
  readonly archiveBucket: string;
}

let config: Config | undefined;

/** The relay's Lambda handler (Kinesis event source, ReportBatchItemFailures). */
export const relayHandler: KinesisStreamHandler = /* @__PURE__ */ flushingTelemetry(
  async (event: Parameters<KinesisStreamHandler>[0]): Promise<KinesisStreamBatchResponse> => {
    config ??= {
      bus: requireEnv(envNames.bus),
      topicArn: requireEnv(envNames.topicArn),
      arbitrationTable: requireEnv(envNames.arbitrationTable),
      deadLetterQueueUrl: requireEnv(envNames.deadLetterQueueUrl),
      archiveBucket: requireEnv(envNames.archiveBucket),
    };
    return relayBatch(config, event.Records);
  },
);

interface Step {
  readonly record: KinesisStreamRecord;
  /** The commit, when its events are published. */
  readonly commit?: Commit;
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
  const persisted = await readHeads(config.arbitrationTable, [...commits.values()].map(aggregateKey));
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
        steps.push({
          record,
          commit,
          publish: commit.events,
          head: { key: aggregateKey(commit), value: verdict.head },
        });
        break;
      case "duplicate":
      case "unversioned":
        steps.push({ record, commit, publish: commit.events });
        break;
      case "conflict":
        logger.info("commit lost arbitration", {
          ...commandKeys({ ...commit, correlationId: commit.events[0]?.correlationid }),
          commitId: commit.commitId,
          aggregate: aggregateKey(commit),
          expectedVersion: commit.expectedVersion,
          currentVersion: verdict.currentVersion,
        });
        steps.push({ record, publish: [] });
        break;
    }
  }

  const traced = relayedSpans(config, steps);
  const published = await publishInOrder(config, steps, traced);
  await persistHeads(config, steps.slice(0, published), persisted);
  const emitter = telemetry();
  if (emitter.enabled) {
    const now = Date.now();
    for (const step of steps.slice(0, published)) {
      const span = traced.get(step);
      if (span !== undefined) emitter.emit(span({ endedAt: now }).record);
    }
  }
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
    commit = await readCommit(bytes);
  } catch (error) {
    if (isCanonError(error, "claim_check")) throw error; // S3 trouble: retry, never drop
    reason = error instanceof Error ? error.message : String(error);
  }
  if (reason === undefined) return commit;
  logger.error("record sent to the dead-letter queue", { reason, sequenceNumber: record.kinesis.sequenceNumber });
  const emitter = telemetry();
  const queue = config.deadLetterQueueUrl.slice(config.deadLetterQueueUrl.lastIndexOf("/") + 1);
  if (emitter.enabled)
    emitter.emit({ kind: "dead_letter", source: `${config.bus}-relay`, deadLetter: { queue, reason } });
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

/** SNS PublishBatch limits: 10 messages, 256 KiB in all. */
const maxBatchEntries = 10;
const maxBatchBytes = 256 * 1024;

/**
 * Publishes the steps' events in order, in batches within SNS's limits (an event too large for
 * a message goes by claim check); returns how many steps went out whole.
 */
async function publishInOrder(
  config: Config,
  steps: readonly Step[],
  traced: ReadonlyMap<Step, RelayedSpan>,
): Promise<number> {
  const entries: { step: number; entry: PublishBatchRequestEntry; bytes: number }[] = [];
  for (const [index, step] of steps.entries()) {
    const traceparent = traced.get(step)?.traceparent;
    for (const event of step.publish) {
      const message = await messageFor(config, event);
      entries.push({
        step: index,
        entry: toEntry(event, message, entries.length, config.bus, traceparent),
        bytes: Buffer.byteLength(message),
      });
    }
  }
  let next = 0;
  while (next < entries.length) {
    const chunk = [entries[next] as (typeof entries)[number]];
    let bytes = chunk[0]?.bytes ?? 0;
    while (chunk.length < maxBatchEntries && next + chunk.length < entries.length) {
      const candidate = entries[next + chunk.length] as (typeof entries)[number];
      if (bytes + candidate.bytes > maxBatchBytes) break;
      chunk.push(candidate);
      bytes += candidate.bytes;
    }
    const failedAt = await publishChunk(
      config,
      chunk.map((c) => c.entry),
    );
    if (failedAt !== undefined) return chunk[failedAt]?.step ?? steps.length;
    next += chunk.length;
  }
  return steps.length;
}

/** Publishes one batch; returns the index of its first failed entry, if any. */
async function publishChunk(config: Config, entries: PublishBatchRequestEntry[]): Promise<number | undefined> {
  try {
    const result = await snsClient().send(
      new PublishBatchCommand({ TopicArn: config.topicArn, PublishBatchRequestEntries: entries }),
    );
    const failedIds = new Set((result.Failed ?? []).map((f) => f.Id));
    const firstFailed = entries.findIndex((e) => failedIds.has(e.Id));
    if (firstFailed < 0) return undefined;
    logger.warn("publish failed", { failed: result.Failed });
    return firstFailed;
  } catch (error) {
    logger.warn("publish failed", { error });
    return 0;
  }
}

/** The message body for an event: the event itself, or a stub with its claim check when too large. */
async function messageFor(config: Config, event: EventEnvelope): Promise<string> {
  const body = JSON.stringify(event);
  if (Buffer.byteLength(body) <= maxInlineEventBytes) return body;
  const claimcheck = await checkIn(config.archiveBucket, eventClaimKey(event.id), body);
  return JSON.stringify({ ...event, data: {}, claimcheck });
}

/** A commit's "relayed" hop, ended when its events are out; its traceparent goes with them. */
type RelayedSpan = ((end: { endedAt: number }) => ReturnType<typeof hopSpan>) & { readonly traceparent: string };

/**
 * The "relayed" hop of each published commit that carries a trace: from its arrival on the
 * stream to its events' publication. Its context travels as the events' `traceparent` message
 * attribute, so subscribers continue from it.
 */
function relayedSpans(config: Config, steps: readonly Step[]): Map<Step, RelayedSpan> {
  const spans = new Map<Step, RelayedSpan>();
  if (!telemetry().enabled) return spans;
  for (const step of steps) {
    const parent = step.commit && parseTraceparent(step.commit.traceparent);
    if (step.commit === undefined || parent === undefined || step.publish.length === 0) continue;
    const { commit } = step;
    const hop = {
      source: `${config.bus}-relay`,
      name: "relayed",
      parent,
      owner: {
        commandId: commit.commandId,
        correlationId: commit.events[0]?.correlationid,
        aggregateId: commit.aggregateId,
      },
      startedAt: Math.round(step.record.kinesis.approximateArrivalTimestamp * 1000),
      key: commit.commitId,
    } as const;
    const end = (at: { endedAt: number }) => hopSpan({ ...hop, ...at });
    spans.set(step, Object.assign(end, { traceparent: formatTraceparent(end({ endedAt: 0 }).context) }));
  }
  return spans;
}

function toEntry(
  event: EventEnvelope,
  message: string,
  index: number,
  bus: string,
  traceparent: string | undefined,
): PublishBatchRequestEntry {
  return {
    Id: `e${index}`,
    Message: message,
    MessageGroupId: `${event.aggregatetype}#${event.subject}`,
    MessageDeduplicationId: event.id,
    MessageAttributes: {
      type: { DataType: "String", StringValue: event.type },
      aggregateType: { DataType: "String", StringValue: event.aggregatetype },
      bus: { DataType: "String", StringValue: bus },
      ...(traceparent === undefined ? {} : { traceparent: { DataType: "String", StringValue: traceparent } }),
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
