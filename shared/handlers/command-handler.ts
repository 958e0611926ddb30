/**
 * The command handler runtime. A batch of commands (in order per aggregate, from a FIFO queue)
 * is carried out in rounds; each round, for every aggregate of the batch at once:
 *
 * 1. read the aggregates' states from the service's own state table (one BatchGetItem);
 * 2. decide each aggregate's commands in order against its state, evolving it as they go
 *    (group commit): each decided commit after the first names the one before it, so
 *    arbitration refuses it if that one lost (a pipelined commit, see arbitrate.ts);
 * 3. seal their personal data (shared/privacy: marked fields, each with its subject's key),
 *    record them as pending outcomes, append every commit in one PutRecords, and wait once
 *    for the whole batch until the arbiter's heads (or, when they cannot tell, the service's own
 *    projection) show each commit won or lost (commit-wait.ts);
 * 4. settle the outcomes; commands whose commit lost go to the next round against fresh state.
 *
 * The state a won commit made is remembered by the instance (decided-states.ts), so the next
 * command for that aggregate is decided on it while the state table is still a hop behind.
 *
 * A rejection decided on state that includes commits not yet known to have won would be a
 * guess, so it waits for the next round. Conflicts are retried with a bound; every command ends
 * with an outcome; a command id seen before returns its first outcome.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { SQSBatchResponse, SQSHandler, SQSRecord } from "aws-lambda";
import { batchGetFromTables, batchPutItems } from "../aws/batch.ts";
import { type CommandMessage, commandMessageSchema } from "../domain/command-message.ts";
import { type CommandSpecs, validateCommand } from "../domain/commands.ts";
import { type Decider, isRejection } from "../domain/decider.ts";
import { optionalEnv, requireEnv } from "../env.ts";
import { isCanonError } from "../errors.ts";
import { maxClaimedBytes } from "../events/claim-check.ts";
import { buildCommit, type Commit, type NewEvent } from "../events/envelope.ts";
import { checkEvent, type EventSchemas } from "../events/schemas.ts";
import { commandKeys, functionLogger } from "../log.ts";
import { envNames } from "../plan.ts";
import { openCommandBody } from "../privacy/fields.ts";
import { sealCommit } from "../privacy/seal.ts";
import { backoffMs, retry } from "../retry.ts";
import { CommandHops, commitTraceparent, type RoundTimes } from "../telemetry/command-hops.ts";
import { flushingTelemetry } from "../telemetry/emitter.ts";
import { readStates, type StateItem, stateKey, stateKeys, statesFrom } from "./aggregate-state.ts";
import { appendCommits } from "./commit-append.ts";
import { awaitCommits, type CommitChain } from "./commit-wait.ts";
import { DecidedStates } from "./decided-states.ts";
import { type Outcome, outcomeEvents } from "./outcomes.ts";

export { appendCommit } from "./commit-append.ts";
export { commitLookSchedule, learnCommitVisibility } from "./commit-wait.ts";

const logger = /* @__PURE__ */ functionLogger("command-handler");

export interface CommandHandlerOptions {
  /** The service's command contract: a queue is an entry point too, so commands are validated again. */
  readonly contract: CommandSpecs;
  /** The aggregate's event schemas: every appended event is checked against its schema. */
  readonly events: EventSchemas;
  /** Conflicts of its own a command may meet before it is reported `conflicted`. @default 3 */
  readonly maxAttempts?: number;
  /** How long to wait for the service's own state to show a batch's commits. @default 10000 */
  readonly commitWaitMs?: number;
}

interface Config {
  readonly service: string;
  readonly bus: string;
  readonly aggregateType: string;
  readonly streamName: string;
  readonly stateTable: string;
  readonly outcomesTable: string;
  /** The bus's arbitration heads, read to learn a commit's fate a hop early (absent: from the state table alone). */
  readonly arbitrationTable: string | undefined;
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
    arbitrationTable: optionalEnv(envNames.arbitrationTable, "") || undefined,
    archiveBucket: requireEnv(envNames.archiveBucket),
  };
}

/** Builds a service's command handler (an SQS FIFO Lambda handler) around its decider. */
export function commandHandler<State>(
  decider: Decider<{ type: string }, NewEvent, State>,
  options: CommandHandlerOptions,
): SQSHandler {
  let config: Config | undefined;
  const decided = new DecidedStates<State>();
  return flushingTelemetry(async (event): Promise<SQSBatchResponse> => {
    config ??= readConfig();
    const hops = new CommandHops(`${config.service}-command-handler`, Date.now());
    return handleCommands({ config, decider, options, decided, hops }, event.Records);
  });
}

interface Runtime<State> {
  readonly config: Config;
  readonly decider: Decider<{ type: string }, NewEvent, State>;
  readonly options: CommandHandlerOptions;
  /** The states this instance's won commits made, ahead of the state table for a hop. */
  readonly decided: DecidedStates<State>;
  /** The batch's telemetry: each command's hops and outcome. */
  readonly hops: CommandHops;
}

/** A command of the batch still to be carried out. */
interface Work {
  readonly record: SQSRecord;
  readonly message: CommandMessage;
  /** Numbers its commits: every decision gets a new one, so a commit id never names two commits. */
  attempt: number;
  /** Conflicts of its own so far (not those of a predecessor it was pipelined after). */
  conflicts: number;
  /** A commit decided before (a pending outcome from an earlier delivery): appended again, not re-decided. */
  pending?: Commit;
}

/** One aggregate of the batch, its commands in queue order. */
interface Group {
  readonly aggregateId: string;
  readonly work: Work[];
  /** Its commit is not visible yet: from this record on, its message group goes back to the queue. */
  failedFrom?: SQSRecord;
}

const messageGroupOf = (record: SQSRecord) => record.attributes.MessageGroupId ?? record.messageId;

async function handleCommands<State>(
  runtime: Runtime<State>,
  records: readonly SQSRecord[],
): Promise<SQSBatchResponse> {
  const groups = new Map<string, Group>();
  const refused: Outcome[] = [];
  /** Message groups cut at a message that is not a command: it and what follows go back (to the DLQ in time). */
  const broken = new Map<string, SQSRecord>();
  // Fields the API sealed (personal data) are opened first: validated and decided on as sent.
  const bodies = await Promise.all(records.map(openedBody));
  for (const [index, record] of records.entries()) {
    if (broken.has(messageGroupOf(record))) continue;
    const body = bodies[index];
    if (body === undefined) {
      broken.set(messageGroupOf(record), record); // an altered sealed field: logged by openedBody
      continue;
    }
    const parsed = parseCommand(runtime.options, { ...record, body });
    if (parsed.kind === "malformed") {
      logger.error("malformed command message: no command id; leaving it to the dead-letter queue", {
        messageId: record.messageId,
      });
      broken.set(messageGroupOf(record), record);
    } else if (parsed.kind === "refused") {
      refused.push(parsed.outcome);
    } else {
      const { aggregateId } = parsed.message;
      runtime.hops.queued(record, parsed.message);
      const work = { record, message: parsed.message, attempt: 1, conflicts: 0 };
      const group = groups.get(aggregateId);
      if (group === undefined) groups.set(aggregateId, { aggregateId, work: [work] });
      else group.work.push(work);
    }
  }
  // A table, the stream or the queue failing for a moment (a throttle past the SDK's retries, an
  // outage) is waited out here, a few seconds, rather than spending one of the messages' few
  // receives: every step is idempotent, and a retry resumes from the outcomes recorded so far.
  const giveUpAt = Date.now() + transientRetryMs;
  await retry(
    async (attempt) => {
      try {
        await carryOut(runtime, groups, refused);
      } catch (error) {
        if (Date.now() < giveUpAt)
          logger.warn("batch interrupted; resumed from its recorded outcomes", { attempt, error });
        throw error;
      }
    },
    { attempts: Number.POSITIVE_INFINITY, baseMs: 400, maxMs: 4_000, retryable: () => Date.now() < giveUpAt },
  );
  // FIFO: a message handed back takes every later message of its group with it.
  const cuts = [...broken.values(), ...[...groups.values()].flatMap((g) => g.failedFrom ?? [])];
  const failed = records.filter((record, index) =>
    cuts.some((cut) => messageGroupOf(cut) === messageGroupOf(record) && records.indexOf(cut) <= index),
  );
  return { batchItemFailures: failed.map((r) => ({ itemIdentifier: r.messageId })) };
}

/** A command message's body with its sealed fields opened; undefined if one was altered (malformed). */
async function openedBody(record: SQSRecord): Promise<string | undefined> {
  try {
    return await openCommandBody(record.body);
  } catch (error) {
    if (!isCanonError(error, "personal_data")) throw error;
    logger.error("command message with an altered sealed field; leaving it to the dead-letter queue", {
      messageId: record.messageId,
      error,
    });
    return undefined;
  }
}

/** How long a batch waits out failing calls before it hands its messages back to the queue. */
const transientRetryMs = 8_000;

/** Resumes from recorded outcomes, then runs rounds until every group is settled or handed back. */
async function carryOut<State>(runtime: Runtime<State>, groups: Map<string, Group>, refused: Outcome[]) {
  const { config } = runtime;
  // The first round's states are read with the outcomes, in one BatchGetItem: one call, not two.
  const aggregateIds = [...groups.keys()];
  const commandIds = [...new Set([...groups.values()].flatMap((g) => g.work.map((w) => w.message.commandId)))];
  const [read] = await Promise.all([
    aggregateIds.length === 0
      ? undefined
      : batchGetFromTables({
          [config.stateTable]: stateKeys(aggregateIds),
          [config.outcomesTable]: commandIds.map((id) => ({ id })),
        }),
    refused.length === 0
      ? undefined
      : batchPutItems(config.outcomesTable, refused as unknown as Record<string, unknown>[]),
  ]);
  const firstStates =
    read === undefined
      ? undefined
      : runtime.decided.freshest(
          statesFrom(aggregateIds, read.get(config.stateTable) ?? [], runtime.decider.initialState),
        );
  resumeFromOutcomes(groups, (read?.get(config.outcomesTable) ?? []) as unknown as Outcome[]);
  for (let round = 1; ; round++) {
    const active = [...groups.values()].filter((g) => g.failedFrom === undefined && g.work.length > 0);
    if (active.length === 0) return;
    const conflicted = await runRound(runtime, active, round === 1 ? firstStates : undefined);
    if (conflicted) await sleep(backoffMs(Math.min(round, 5), { baseMs: 100 }));
  }
}

type Parsed =
  | { readonly kind: "command"; readonly message: CommandMessage }
  | { readonly kind: "refused"; readonly outcome: Outcome }
  | { readonly kind: "malformed" };

/** Parses and validates a queue message: a command, one refused with an outcome, or not a command at all. */
function parseCommand(options: CommandHandlerOptions, record: SQSRecord): Parsed {
  let json: unknown;
  try {
    json = JSON.parse(record.body);
  } catch {
    return { kind: "malformed" };
  }
  const result = commandMessageSchema.safeParse(json);
  if (!result.success) {
    const commandId = (json as { commandId?: unknown } | null)?.commandId;
    if (typeof commandId !== "string" || commandId.length === 0 || commandId.length > 200) return { kind: "malformed" };
    const issue = result.error.issues[0];
    const invalid = `${issue?.path.join(".") || "(body)"}: ${issue?.message ?? "invalid"}`;
    return {
      kind: "refused",
      outcome: {
        id: commandId,
        status: "rejected",
        command: "unknown",
        aggregateId: "unknown",
        attempt: 0,
        reason: `malformed command message: ${invalid}`,
        updatedAt: new Date().toISOString(),
      },
    };
  }
  const message = result.data;
  const { type, ...payload } = message.command;
  const validation = validateCommand(options.contract, type, payload);
  if (!validation.ok || validation.aggregateId !== message.aggregateId) {
    const reason = validation.ok ? "aggregate id does not match the command" : validation.error;
    return { kind: "refused", outcome: outcome(message, 0, "rejected", { reason: `invalid command: ${reason}` }) };
  }
  return { kind: "command", message: { ...message, command: validation.command } };
}

/** Drops commands that already have an outcome (the first one stands) and resumes pending ones. */
function resumeFromOutcomes(groups: Map<string, Group>, found: readonly Outcome[]): void {
  const previous = new Map(found.map((o) => [o.id, o]));
  for (const group of groups.values()) {
    const seen = new Set<string>();
    const kept = group.work.filter((work) => {
      const id = work.message.commandId;
      const before = previous.get(id);
      if (seen.has(id) || (before !== undefined && before.status !== "pending")) return false;
      seen.add(id);
      if (before !== undefined) {
        work.attempt = before.attempt;
        work.pending = before.commit;
      }
      return true;
    });
    group.work.splice(0, group.work.length, ...kept);
  }
}

/** What a round decided for one group. */
interface Plan<State> {
  readonly group: Group;
  /**
   * Commits on the aggregate's history, in order, each with the command it carries out and the
   * state it makes (unknown for a commit resumed from an earlier delivery).
   */
  readonly chain: {
    readonly work: Work;
    readonly commit: Commit;
    readonly resumed: boolean;
    readonly after?: StateItem<State>;
  }[];
  /** Decided on confirmed state alone: rejections (appended, store everything) and no-ops. */
  readonly finals: { readonly work: Work; readonly rejection?: Commit }[];
}

/** One round over the active groups; true if some command met a conflict of its own. */
async function runRound<State>(
  runtime: Runtime<State>,
  groups: readonly Group[],
  known?: ReadonlyMap<string, StateItem<State>>,
): Promise<boolean> {
  const { config, options } = runtime;
  const startedAt = Date.now();
  const states =
    known ??
    runtime.decided.freshest(
      await readStates(
        config.stateTable,
        groups.map((g) => g.aggregateId),
        runtime.decider.initialState,
      ),
    );
  const plans = await Promise.all(
    groups.map((group) => sealPlan(runtime, planGroup(runtime, group, states.get(group.aggregateId)))),
  );
  const decidedAt = Date.now();
  const fresh = plans.flatMap((p) => p.chain.filter((c) => !c.resumed));
  // Pending first: a crash after the append resumes the very same commit instead of deciding again.
  if (fresh.length > 0) {
    await batchPutItems(
      config.outcomesTable,
      fresh.map(
        (c) =>
          outcome(c.work.message, c.work.attempt, "pending", { commit: c.commit }) as unknown as Record<
            string,
            unknown
          >,
      ),
    );
  }
  const appendStartedAt = Date.now();
  await appendCommits(
    config,
    plans.flatMap((p) => [
      ...p.finals.flatMap((f) => (f.rejection === undefined ? [] : [f.rejection])),
      ...p.chain.map((c) => c.commit),
    ]),
  );
  const times: RoundTimes = { startedAt, decidedAt, appendStartedAt, appendedAt: Date.now() };
  for (const plan of plans) {
    for (const f of plan.finals) runtime.hops.round(f.work.message, f.work.attempt, times, f.rejection !== undefined);
    for (const c of plan.chain) runtime.hops.round(c.work.message, c.work.attempt, times, true);
  }
  /** The round's final outcomes, each with its command. */
  const settled: { readonly message: CommandMessage; readonly outcome: Outcome }[] = [];
  const settle = (work: Work, made: Outcome) => settled.push({ message: work.message, outcome: made });
  for (const p of plans) {
    for (const { work, rejection } of p.finals) {
      settle(
        work,
        rejection === undefined
          ? outcome(work.message, work.attempt, "accepted", { events: [] })
          : outcome(work.message, work.attempt, "rejected", { reason: String(rejection.events[0]?.data.reason) }),
      );
    }
  }
  const chains: CommitChain[] = plans.map((p) => ({
    aggregateId: p.group.aggregateId,
    commits: p.chain.map((c) => c.commit),
  }));
  const fates = await awaitCommits(
    { stateTable: config.stateTable, arbitrationTable: config.arbitrationTable },
    chains,
    options.commitWaitMs ?? 10_000,
  );
  for (const plan of plans) rememberDecided(runtime.decided, plan, fates);

  let conflicted = false;
  const maxConflicts = options.maxAttempts ?? 3;
  for (const plan of plans) {
    const done = new Set<Work>(plan.finals.map((f) => f.work));
    let first = true;
    for (const { work, commit } of plan.chain) {
      const fate = fates.get(commit.commitId) ?? "pending";
      if (fate === "accepted") {
        settle(work, outcome(work.message, work.attempt, "accepted", { events: outcomeEvents(commit) }));
        done.add(work);
      } else if (fate === "lost") {
        // The first loser met a conflict of its own; those after it lost with it.
        if (first) work.conflicts += 1;
        first = false;
        conflicted = true;
        logger.info("commit lost arbitration", {
          ...commandKeys(work.message),
          commitId: commit.commitId,
          attempt: work.attempt,
        });
        work.pending = undefined;
        work.attempt += 1;
        if (work.conflicts >= maxConflicts) {
          const reason = `version conflict: still conflicting after ${work.conflicts} attempts`;
          settle(work, outcome(work.message, work.attempt - 1, "conflicted", { reason }));
          done.add(work);
        }
      } else {
        logger.warn("commit not visible yet; its group is retried", {
          ...commandKeys(work.message),
          commitId: commit.commitId,
        });
        plan.group.failedFrom ??= work.record;
        break;
      }
    }
    const left = plan.group.work.filter((w) => !done.has(w));
    plan.group.work.splice(0, plan.group.work.length, ...left);
  }
  if (settled.length > 0) {
    const outcomes = settled.map((s) => s.outcome);
    await batchPutItems(config.outcomesTable, outcomes as unknown as Record<string, unknown>[]);
    for (const { message, outcome: made } of settled) runtime.hops.outcome(message, made.status, made.attempt, times);
  }
  return conflicted;
}

/**
 * Remembers the state the group's last won commit made, if this round knows it; forgets the
 * aggregate when a commit of it lost (another writer moved it on) or its state is unknown.
 */
function rememberDecided<State>(
  decided: DecidedStates<State>,
  plan: Plan<State>,
  fates: ReadonlyMap<string, string>,
): void {
  const won = plan.chain.filter((c) => fates.get(c.commit.commitId) === "accepted");
  const last = won.at(-1);
  if (plan.chain.some((c) => fates.get(c.commit.commitId) === "lost") || (last !== undefined && !last.after)) {
    decided.forget(plan.group.aggregateId);
  } else if (last?.after !== undefined) {
    decided.remember(plan.group.aggregateId, last.after);
  }
}

/**
 * Seals the personal data of a round's new commits (shared/privacy) before anything is recorded
 * or appended: the pending outcome holds the sealed commit, so a resumed command re-sends the
 * very bytes it first sent, and no plaintext leaves the handler.
 */
async function sealPlan<State>(runtime: Runtime<State>, plan: Plan<State>): Promise<Plan<State>> {
  const contracts = { events: runtime.options.events, commands: runtime.options.contract };
  const seal = (commit: Commit) => sealCommit(commit, contracts);
  const chain = await Promise.all(
    plan.chain.map(async (c) => (c.resumed ? c : { ...c, commit: await seal(c.commit) })),
  );
  const finals = await Promise.all(
    plan.finals.map(async (f) =>
      f.rejection === undefined || f.work.pending !== undefined ? f : { ...f, rejection: await seal(f.rejection) },
    ),
  );
  return { group: plan.group, chain, finals };
}

/** Decides a group's commands in order against its state, as far as they can go this round. */
function planGroup<State>(runtime: Runtime<State>, group: Group, confirmed: StateItem<State> | undefined): Plan<State> {
  const { decider } = runtime;
  const plan: Plan<State> = { group, chain: [], finals: [] };
  let state = confirmed?.state ?? decider.initialState;
  let version = confirmed?.version ?? 0;
  for (const work of group.work) {
    const previous = plan.chain.at(-1)?.commit;
    if (work.pending !== undefined) {
      // Decided in an earlier delivery: appended again as it was; what follows waits a round.
      if (previous !== undefined) break;
      if (work.pending.kind === "rejection") {
        plan.finals.push({ work, rejection: work.pending });
        continue;
      }
      plan.chain.push({ work, commit: work.pending, resumed: true });
      break;
    }
    const decided = decideCommit(runtime, work, state, version, previous?.commitId);
    if (decided !== "nothing" && decided.kind === "events") {
      for (const event of decided.events) state = decider.evolve(state, { type: event.type, data: event.data });
      version += decided.events.length;
      const after = { id: stateKey(group.aggregateId), version, lastCommitId: decided.commitId, state };
      plan.chain.push({ work, commit: decided, resumed: false, after });
      continue;
    }
    // A rejection or a no-op is final only if decided on confirmed state.
    if (previous !== undefined) break;
    plan.finals.push(decided === "nothing" ? { work } : { work, rejection: decided });
  }
  return plan;
}

function decideCommit<State>(
  runtime: Runtime<State>,
  work: Work,
  state: State,
  version: number,
  previousCommitId: string | undefined,
): Commit | "nothing" {
  const { config, decider, options } = runtime;
  const { message } = work;
  const receivedAt = new Date(message.receivedAt);
  const decision = decider.decide(message.command, state, { commandId: message.commandId, receivedAt });
  const meta = {
    commandId: message.commandId,
    attempt: work.attempt,
    service: config.service,
    bus: config.bus,
    aggregateType: config.aggregateType,
    aggregateId: message.aggregateId,
    expectedVersion: version,
    correlationId: message.correlationId,
    causationId: message.causationId,
    traceparent: commitTraceparent(message, work.attempt),
    now: receivedAt,
  };
  const rejection = (reason: string) =>
    buildCommit("rejection", meta, [
      { type: "CommandRejected", data: { command: message.command.type, reason, payload: message.command } },
    ]);
  if (isRejection(decision)) return rejection(decision.reason);
  if (decision.length === 0) return "nothing";
  const versions = decision.map((event) => checkEvent(options.events, event.type, event.data));
  const built = buildCommit("events", { ...meta, previousCommitId }, decision);
  const commit = { ...built, events: built.events.map((e, i) => ({ ...e, schemaversion: versions[i] ?? 1 })) };
  // Large commits travel by claim check; past what a claim check carries, refuse with the reason.
  const bytes = Buffer.byteLength(JSON.stringify(commit));
  if (bytes > maxClaimedBytes)
    return rejection(`the command's events take ${bytes} bytes, more than ${maxClaimedBytes}`);
  return commit;
}

function outcome(
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
