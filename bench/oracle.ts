/**
 * The bank oracle (ARCHITECTURE §7), checked after a soak has quiesced: money conserved, no
 * negative balance, every transfer COMPLETED or FAILED, every view equal to the fold of the
 * archive, the archive verified, and the injected poison (and nothing else) dead-lettered or
 * parked with a reason. Returns the problems found; none means the oracle holds.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { upcasters } from "../events/upcasters.ts";
import { type BalanceItem, evolveBalance } from "../functions/accounts/balances-projection.ts";
import {
  type AccountEvent,
  accountEventTypes,
  type MovementEvent,
  movementEventTypes,
} from "../functions/accounts/decider.ts";
import { evolveStatement, type StatementItem } from "../functions/statements/history-projection.ts";
import { type TransferEvent, transferEventTypes } from "../functions/transfers/decider.ts";
import { evolveTransfer, type TransferItem } from "../functions/transfers/transfers-projection.ts";
import { acceptedEventsFromArchive } from "../shared/archive/replay.ts";
import { verifyArchive } from "../shared/archive/verify.ts";
import { sqsClient } from "../shared/aws/clients.ts";
import { scanItems } from "../shared/aws/tables.ts";
import { isEventOf } from "../shared/domain/decider.ts";
import type { EventEnvelope } from "../shared/events/envelope.ts";
import type { ProvisionedResources } from "../shared/local-cloud/provision.ts";
import { deadLetterReport } from "../shared/runner/dead-letters.ts";
import { readEndpoints } from "../shared/runner/endpoints.ts";

export interface OracleInput {
  readonly url: string;
  readonly dataDir: string;
  readonly resources: ProvisionedResources;
  /** The soak's accounts (poison aggregates are not among them). */
  readonly accounts: readonly string[];
  /** Money the clients saw accepted: opening deposits plus deposits minus withdrawals. */
  readonly expectedTotalCents: number;
  /** Transfers whose request was accepted. */
  readonly transfers: readonly string[];
  /** Aggregate ids of the poison events, and the sequence numbers of the poison records. */
  readonly poisonAggregates: readonly string[];
  readonly poisonSequenceNumbers: readonly string[];
}

export interface OracleReport {
  readonly problems: string[];
  readonly stats: { archivedEvents: number; views: number; parked: number; deadLettered: number };
}

const bus = "core";

/** The folds of the archive that the views must equal. */
function folds(events: readonly EventEnvelope[], poison: ReadonlySet<string>) {
  const balances = new Map<string, BalanceItem>();
  const statements = new Map<string, StatementItem>();
  const transfers = new Map<string, TransferItem>();
  for (const event of events) {
    if (event.aggregatetype === "Account") {
      if (poison.has(event.subject)) continue;
      const accountEvent = { type: event.type, data: event.data } as AccountEvent;
      balances.set(event.subject, evolveBalance(balances.get(event.subject), accountEvent, event.aggregateversion));
      if (isEventOf<MovementEvent>(event, movementEventTypes)) {
        statements.set(event.subject, evolveStatement(statements.get(event.subject), event));
      }
    } else if (event.aggregatetype === "Transfer") {
      const transferEvent = { type: event.type, data: event.data } as TransferEvent;
      transfers.set(event.subject, evolveTransfer(transfers.get(event.subject), transferEvent, event.aggregateversion));
    }
  }
  return { balances, statements, transfers };
}

/** Differences between a fold and a table, named (at most a few per view). */
function compare(name: string, expected: ReadonlyMap<string, object>, actual: ReadonlyMap<string, object>): string[] {
  const problems: string[] = [];
  for (const [id, item] of expected) {
    const found = actual.get(id);
    if (JSON.stringify(sorted(found)) !== JSON.stringify(sorted({ ...item, id }))) {
      problems.push(`${name}/${id}: view ${JSON.stringify(found)} ≠ fold ${JSON.stringify(item)}`);
    }
  }
  return problems.slice(0, 5);
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, sorted(v)]),
    );
  }
  return value;
}

/** Compares every view with the fold of the archive; retried until equal or `timeoutMs` passes (projections lag). */
async function viewsEqualFolds(input: OracleInput, events: readonly EventEnvelope[], timeoutMs: number) {
  const expected = folds(events, new Set(input.poisonAggregates));
  const tables = {
    balances: input.resources.tableNames.get("accounts-balances") as string,
    statements: input.resources.tableNames.get("statements-history") as string,
    transfers: input.resources.tableNames.get("transfers-transfers") as string,
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [balances, statements, transfers] = await Promise.all([
      scanItems(tables.balances),
      scanItems(tables.statements),
      scanItems(tables.transfers),
    ]);
    const problems = [
      ...compare("accounts/balances", expected.balances, balances),
      ...compare("statements/history", expected.statements, statements),
      ...compare("transfers/transfers", expected.transfers, transfers),
    ];
    if (problems.length === 0 || Date.now() > deadline) {
      return { problems, balances, transfers, views: expected.balances.size + expected.transfers.size };
    }
    await sleep(500);
  }
}

/**
 * The daily totals view against the fold of deposits and withdrawals (poison aggregates
 * excluded); retried until equal or `timeoutMs` passes, since it lags like every projection.
 */
async function dailyTotals(input: OracleInput, events: readonly EventEnvelope[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problems = await compareDailyTotals(input, events);
    if (problems.length === 0 || Date.now() > deadline) return problems;
    await sleep(500);
  }
}

async function compareDailyTotals(input: OracleInput, events: readonly EventEnvelope[]): Promise<string[]> {
  const poison = new Set(input.poisonAggregates);
  const days = new Map<string, { depositsCents: number; withdrawalsCents: number; events: number }>();
  for (const e of events) {
    if (poison.has(e.subject) || (e.type !== "FundsDeposited" && e.type !== "FundsWithdrawn")) continue;
    const date = e.time.slice(0, 10);
    const day = days.get(date) ?? { depositsCents: 0, withdrawalsCents: 0, events: 0 };
    const amount = Number(e.data.amountCents);
    days.set(date, {
      depositsCents: day.depositsCents + (e.type === "FundsDeposited" ? amount : 0),
      withdrawalsCents: day.withdrawalsCents + (e.type === "FundsWithdrawn" ? amount : 0),
      events: day.events + 1,
    });
  }
  const problems: string[] = [];
  for (const [date, day] of days) {
    const response = await fetch(`${input.url}/views/accounts/daily-totals/${date}`);
    const view = response.status === 200 ? ((await response.json()) as typeof day) : undefined;
    if (
      view?.depositsCents !== day.depositsCents ||
      view.withdrawalsCents !== day.withdrawalsCents ||
      view.events !== day.events
    ) {
      problems.push(`accounts/daily-totals/${date}: view ${JSON.stringify(view)} ≠ fold ${JSON.stringify(day)}`);
    }
  }
  return problems;
}

/** Every message on a queue (received with a long visibility timeout: the run is over). */
async function drain(url: string): Promise<Record<string, unknown>[]> {
  const bodies: Record<string, unknown>[] = [];
  for (let round = 0; round < 100; round++) {
    const page = await sqsClient().send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 300, WaitTimeSeconds: 0 }),
    );
    if ((page.Messages ?? []).length === 0) break;
    for (const m of page.Messages ?? []) {
      try {
        bodies.push(JSON.parse(m.Body ?? "") as Record<string, unknown>);
      } catch {
        bodies.push({ unreadable: m.Body });
      }
    }
  }
  return bodies;
}

/** Poison went where it must, with its reason, and nothing else did. */
async function poisonAccounted(
  input: OracleInput,
  timeoutMs: number,
): Promise<{ problems: string[]; parked: number; dead: number }> {
  const problems: string[] = [];
  const endpoints = readEndpoints(input.dataDir);
  const poison = new Set(input.poisonAggregates.map((id) => `Account#${id}`));
  // A poison event parks only on its third receive, after retries and injected delays: wait for it (bounded).
  const deadline = Date.now() + timeoutMs;
  let report = await deadLetterReport(endpoints);
  while ([...poison].some((group) => !report.parked.some((p) => p.group === group)) && Date.now() < deadline) {
    await sleep(500);
    report = await deadLetterReport(endpoints);
  }
  for (const park of report.parked) {
    if (!poison.has(park.group))
      problems.push(`${park.projection} parked ${park.group}, which is no poison: ${park.reason}`);
    else if (park.reason.trim() === "") problems.push(`${park.projection} parked ${park.group} without a reason`);
  }
  for (const group of poison) {
    if (!report.parked.some((p) => p.group === group)) problems.push(`poison event of ${group} was parked nowhere`);
  }
  const relayFailures = endpoints.queues.filter((q) => q.failures && q.id.includes("relay"));
  const failureUrls = new Set(relayFailures.map((q) => q.url));
  for (const queue of report.deadLetterQueues) {
    const isRelayFailures = relayFailures.some((q) => q.url.endsWith(`/${queue.queue}`));
    if (!isRelayFailures && queue.messages > 0) {
      problems.push(`${queue.queue} holds ${queue.messages} messages: ${JSON.stringify(queue.sample.slice(0, 2))}`);
    }
  }
  // The relay may still be retrying a batch (injected crashes): keep draining until every poison record is there.
  const dead = (await Promise.all([...failureUrls].map(drain))).flat();
  const arrived = () => new Set(dead.map((body) => String(body.sequenceNumber)));
  while (input.poisonSequenceNumbers.some((s) => !arrived().has(s)) && Date.now() < deadline) {
    await sleep(500);
    dead.push(...(await Promise.all([...failureUrls].map(drain))).flat());
  }
  const seen = new Set<string>();
  for (const body of dead) {
    const sequence = String(body.sequenceNumber);
    if (!input.poisonSequenceNumbers.includes(sequence)) {
      problems.push(`the relay dead-lettered a record that is no poison: ${JSON.stringify(body).slice(0, 200)}`);
    } else if (typeof body.reason !== "string" || body.reason === "") {
      problems.push(`poison record ${sequence} dead-lettered without a reason`);
    }
    seen.add(sequence);
  }
  for (const sequence of input.poisonSequenceNumbers) {
    if (!seen.has(sequence)) problems.push(`poison record ${sequence} is not in the relay's dead-letter queue`);
  }
  return { problems, parked: report.parked.length, dead: dead.length };
}

/** Runs every check of the oracle; `timeoutMs` bounds the wait for the views to catch up. */
export async function checkOracle(input: OracleInput, timeoutMs = 60_000): Promise<OracleReport> {
  const problems: string[] = [];
  const bucket = input.resources.archiveBuckets.get(bus) as string;
  const streamName = input.resources.streamNames.get(bus) as string;

  const verified = await verifyArchive({ bucket, bus, streamName });
  if (!verified.ok) problems.push(...verified.problems.map((p) => `archive verify: ${p}`));
  if (verified.stats.notYetArchived > 0)
    problems.push(`archive verify: ${verified.stats.notYetArchived} records not archived`);

  const events = await acceptedEventsFromArchive(bucket, bus, [...accountEventTypes, ...transferEventTypes], upcasters);
  const views = await viewsEqualFolds(input, events, timeoutMs);
  problems.push(...views.problems);
  problems.push(...(await dailyTotals(input, events, timeoutMs)));

  let total = 0;
  for (const accountId of input.accounts) {
    const balance = Number(views.balances.get(accountId)?.balanceCents ?? Number.NaN);
    if (!(balance >= 0)) problems.push(`account ${accountId}: balance ${balance}`);
    total += balance;
  }
  if (total !== input.expectedTotalCents) {
    problems.push(
      `money not conserved: balances sum to ${total}, the clients saw ${input.expectedTotalCents} accepted`,
    );
  }
  for (const transferId of input.transfers) {
    const status = views.transfers.get(transferId)?.status;
    if (status !== "COMPLETED" && status !== "FAILED") problems.push(`transfer ${transferId} ended ${String(status)}`);
  }
  const poison = await poisonAccounted(input, timeoutMs);
  problems.push(...poison.problems);
  return {
    problems,
    stats: { archivedEvents: events.length, views: views.views, parked: poison.parked, deadLettered: poison.dead },
  };
}
