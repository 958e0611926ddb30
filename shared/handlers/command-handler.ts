/**
 * The command handler runtime. For each command (in order per aggregate, from a FIFO queue):
 * read the aggregate's state from the service's own state table, decide, append one commit
 * to the bus stream, and wait until the service's own projection shows whether the commit
 * won arbitration (read-your-writes). Conflicts are retried against fresh state, with a bound.
 * Every command ends with an outcome; a command id seen before returns its first outcome.
 */
import { processPartialResponse, SqsFifoPartialProcessorAsync } from "@aws-lambda-powertools/batch";
import { Logger } from "@aws-lambda-powertools/logger";
import { PutRecordCommand } from "@aws-sdk/client-kinesis";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { SQSHandler, SQSRecord } from "aws-lambda";
import { dynamoClient, kinesisClient } from "../aws/clients.ts";
import { type CommandMessage, commandMessageSchema } from "../domain/command-message.ts";
import { type CommandSpecs, validateCommand } from "../domain/commands.ts";
import { type Decider, isRejection } from "../domain/decider.ts";
import { requireEnv } from "../env.ts";
import { checkIn, commitClaimKey, maxClaimedBytes, maxInlineCommitBytes } from "../events/claim-check.ts";
import { buildCommit, type Commit, commitClaimRecord, MalformedMessageError } from "../events/envelope.ts";
import { checkEvent, type EventSchemas } from "../events/schemas.ts";
import { envNames } from "../plan.ts";
import { isCommitAccepted, readState } from "./aggregate-state.ts";
import { type Outcome, outcomeEvents } from "./outcomes.ts";

const logger = new Logger({ serviceName: "canon-command-handler" });

export interface CommandHandlerOptions {
  /** The service's command contract: a queue is an entry point too, so commands are validated again. */
  readonly contract: CommandSpecs;
  /** The aggregate's event schemas: every appended event is checked against its schema. */
  readonly events: EventSchemas;
  /** Decisions tried before a command is reported `conflicted`. @default 3 */
  readonly maxAttempts?: number;
  /** How long to wait for the service's own state to show a commit. @default 10000 */
  readonly commitWaitMs?: number;
}

/** Thrown when the commit's fate is not visible yet: the message is retried and resumes. */
export class CommitPendingError extends Error {
  override name = "CommitPendingError";
}

interface Config {
  readonly service: string;
  readonly bus: string;
  readonly aggregateType: string;
  readonly streamName: string;
  readonly stateTable: string;
  readonly outcomesTable: string;
  /** Where commits too large for a stream record go (claim checks). */
  readonly archiveBucket: string;
}

function readConfig(): Config {
  return {
    service: requireEnv(envNames.service),
    bus: requireEnv(envNames.bus),
    aggregateType: requireEnv(envNames.aggregateType),
    streamName: requireEnv(envNames.streamName),
    stateTable: requireEnv(envNames.stateTable),
    outcomesTable: requireEnv(envNames.outcomesTable),
    archiveBucket: requireEnv(envNames.archiveBucket),
  };
}

/** Builds a service's command handler (an SQS FIFO Lambda handler) around its decider. */
export function commandHandler<State>(
  decider: Decider<{ type: string }, State>,
  options: CommandHandlerOptions,
): SQSHandler {
  let config: Config | undefined;
  const recordHandler = async (record: SQSRecord) => {
    config ??= readConfig();
    await handleCommand(config, decider, options, record);
  };
  return async (event, context) => {
    const processor = new SqsFifoPartialProcessorAsync();
    return processPartialResponse(event, recordHandler, processor, { context, skipGroupOnError: true });
  };
}

async function handleCommand<State>(
  config: Config,
  decider: Decider<{ type: string }, State>,
  options: CommandHandlerOptions,
  record: SQSRecord,
): Promise<void> {
  let message = parseCommandMessage(record.body);
  if (message === undefined) {
    logger.error("malformed command message: no command id; leaving it to the dead-letter queue", {
      messageId: record.messageId,
    });
    throw new MalformedMessageError(`message ${record.messageId} is not a command`);
  }
  if ("invalid" in message) {
    await writeOutcome(config, {
      id: message.commandId,
      status: "rejected",
      command: "unknown",
      aggregateId: "unknown",
      attempt: 0,
      reason: `malformed command message: ${message.invalid}`,
      updatedAt: new Date().toISOString(),
    });
    return;
  }
  const { type, ...payload } = message.command;
  const validation = validateCommand(options.contract, type, payload);
  if (!validation.ok || validation.aggregateId !== message.aggregateId) {
    const reason = validation.ok ? "aggregate id does not match the command" : validation.error;
    await writeOutcome(config, baseOutcome(message, 0, "rejected", { reason: `invalid command: ${reason}` }));
    return;
  }
  message = { ...message, command: validation.command };
  const maxAttempts = options.maxAttempts ?? 3;
  const waitMs = options.commitWaitMs ?? 10_000;
  const previous = await readOutcome(config, message.commandId);
  if (previous !== undefined && previous.status !== "pending") return; // the first outcome stands
  let attempt = previous?.attempt ?? 1;
  let pending = previous?.commit;

  for (;;) {
    if (pending === undefined) {
      const decided = await decideCommit(config, decider, options.events, message, attempt);
      if (decided === "nothing") {
        // Nothing to record (e.g. a step already taken): accepted, with no events.
        await writeOutcome(config, baseOutcome(message, attempt, "accepted", { events: [] }));
        return;
      }
      pending = decided;
      await writeOutcome(config, baseOutcome(message, attempt, "pending", { commit: pending }));
    }
    await appendCommit(config, pending);
    if (pending.kind === "rejection") {
      const reason = String(pending.events[0]?.data.reason ?? "rejected");
      await writeOutcome(config, baseOutcome(message, attempt, "rejected", { reason }));
      return;
    }
    const fate = await awaitCommit(config, pending, waitMs);
    if (fate === "accepted") {
      await writeOutcome(config, baseOutcome(message, attempt, "accepted", { events: outcomeEvents(pending) }));
      return;
    }
    if (fate === "pending") throw new CommitPendingError(`commit ${pending.commitId} not visible after ${waitMs} ms`);
    logger.info("commit lost arbitration", { commitId: pending.commitId, attempt });
    if (attempt >= maxAttempts) {
      const reason = `version conflict: still conflicting after ${attempt} attempts`;
      await writeOutcome(config, baseOutcome(message, attempt, "conflicted", { reason }));
      return;
    }
    attempt += 1;
    pending = undefined;
    await sleep(backoffMs(attempt));
  }
}

type ParsedMessage = CommandMessage | { commandId: string; invalid: string } | undefined;

function parseCommandMessage(body: string): ParsedMessage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  const result = commandMessageSchema.safeParse(json);
  if (result.success) return result.data;
  const commandId = (json as { commandId?: unknown } | null)?.commandId;
  if (typeof commandId !== "string" || commandId.length === 0 || commandId.length > 200) return undefined;
  const issue = result.error.issues[0];
  return { commandId, invalid: `${issue?.path.join(".") || "(body)"}: ${issue?.message ?? "invalid"}` };
}

async function decideCommit<State>(
  config: Config,
  decider: Decider<{ type: string }, State>,
  schemas: EventSchemas,
  message: CommandMessage,
  attempt: number,
): Promise<Commit | "nothing"> {
  const current = await readState(config.stateTable, message.aggregateId, decider.initialState);
  const receivedAt = new Date(message.receivedAt);
  const decision = decider.decide(message.command, current.state, { commandId: message.commandId, receivedAt });
  const meta = {
    commandId: message.commandId,
    attempt,
    service: config.service,
    bus: config.bus,
    aggregateType: config.aggregateType,
    aggregateId: message.aggregateId,
    expectedVersion: current.version,
    correlationId: message.correlationId,
    causationId: message.causationId,
    now: receivedAt,
  };
  const rejection = (reason: string) =>
    buildCommit("rejection", meta, [
      { type: "CommandRejected", data: { command: message.command.type, reason, payload: message.command } },
    ]);
  if (isRejection(decision)) return rejection(decision.reason);
  if (decision.length === 0) return "nothing";
  const versions = decision.map((event) => checkEvent(schemas, event.type, event.data));
  const built = buildCommit("events", meta, decision);
  const commit = { ...built, events: built.events.map((e, i) => ({ ...e, schemaversion: versions[i] ?? 1 })) };
  // Large commits travel by claim check; past what a claim check carries, refuse with the reason.
  const bytes = Buffer.byteLength(JSON.stringify(commit));
  if (bytes > maxClaimedBytes)
    return rejection(`the command's events take ${bytes} bytes, more than ${maxClaimedBytes}`);
  return commit;
}

/** Appends a commit to the bus stream; one too large for a record goes by claim check. */
export async function appendCommit(
  config: Pick<Config, "streamName" | "archiveBucket">,
  commit: Commit,
): Promise<void> {
  let body = JSON.stringify(commit);
  if (Buffer.byteLength(body) > maxInlineCommitBytes) {
    body = commitClaimRecord(commit, await checkIn(config.archiveBucket, commitClaimKey(commit.commitId), body));
  }
  await kinesisClient().send(
    new PutRecordCommand({ StreamName: config.streamName, PartitionKey: commit.aggregateId, Data: Buffer.from(body) }),
  );
}

/**
 * How long commits have lately taken to show in this instance's service state (an average
 * of the last ones). The wait for a commit times its first look by it, so a command costs a
 * few reads rather than one every few milliseconds from the moment it is appended.
 */
const visibility = { typicalMs: 250 };

/** When to look first, and how often after, given the typical time a commit takes to show. */
export function commitLookSchedule(typicalMs: number): { readonly firstMs: number; readonly everyMs: number } {
  const clamp = (ms: number, low: number, high: number) => Math.round(Math.min(high, Math.max(low, ms)));
  return { firstMs: clamp(typicalMs * 0.75, 10, 2_000), everyMs: clamp(typicalMs / 4, 20, 200) };
}

/** Folds one observed time-to-show into the typical one (an exponentially weighted average). */
export function learnCommitVisibility(typicalMs: number, observedMs: number): number {
  return 0.7 * typicalMs + 0.3 * Math.min(Math.max(observedMs, 0), 5_000);
}

/** Looks at the service's own state until it shows the commit won, lost, or time runs out. */
async function awaitCommit(
  config: Config,
  commit: Commit,
  waitMs: number,
): Promise<"accepted" | "conflict" | "pending"> {
  const started = Date.now();
  const deadline = started + waitMs;
  const finalVersion = commit.expectedVersion + commit.events.length;
  const schedule = commitLookSchedule(visibility.typicalMs);
  const settled = (fate: "accepted" | "conflict") => {
    visibility.typicalMs = learnCommitVisibility(visibility.typicalMs, Date.now() - started);
    return fate;
  };
  let wait = schedule.firstMs;
  for (;;) {
    await sleep(Math.max(0, Math.min(wait, deadline - Date.now())));
    const state = await readState(config.stateTable, commit.aggregateId, null);
    if (state.version > commit.expectedVersion) {
      // Markers precede state: past the expected version, the marker says whether it was this commit.
      const accepted = await isCommitAccepted(config.stateTable, commit.commitId);
      if (accepted && state.version >= finalVersion) return settled("accepted");
      if (!accepted) return settled("conflict"); // the next version was taken by another commit
    }
    if (Date.now() >= deadline) return "pending";
    wait = schedule.everyMs;
  }
}

function baseOutcome(
  message: CommandMessage,
  attempt: number,
  status: Outcome["status"],
  rest: Partial<Pick<Outcome, "commit" | "events" | "reason">>,
): Outcome {
  return {
    id: message.commandId,
    status,
    command: message.command.type,
    aggregateId: message.aggregateId,
    attempt,
    ...rest,
    updatedAt: new Date().toISOString(),
  };
}

async function readOutcome(config: Config, commandId: string): Promise<Outcome | undefined> {
  const result = await dynamoClient().send(
    new GetCommand({ TableName: config.outcomesTable, Key: { id: commandId }, ConsistentRead: true }),
  );
  return result.Item as Outcome | undefined;
}

async function writeOutcome(config: Config, outcome: Outcome): Promise<void> {
  await dynamoClient().send(new PutCommand({ TableName: config.outcomesTable, Item: outcome }));
}

function backoffMs(attempt: number): number {
  return Math.round(25 * 2 ** attempt * (0.5 + Math.random()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
