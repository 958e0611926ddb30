/**
 * The read side under injected faults, over the wire: the runner loses acks (duplicates),
 * crashes projections and the relay after partial work (whole batches redelivered), replays
 * acknowledged messages out of order and delays redeliveries (CANON_FAULTS, seeded). After a
 * workload of deposits, withdrawals and transfers, every view equals the fold of the accepted
 * events read back from the stream, each balance equals the sum of its statement entries, and
 * nothing was parked or dead-lettered.
 */
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from "@aws-sdk/client-kinesis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AccountEvent, accountEventTypes, balanceDelta } from "../../functions/accounts/decider.ts";
import { kinesisClient } from "../../shared/aws/clients.ts";
import { isEventOf } from "../../shared/domain/decider.ts";
import { acceptedHistory } from "../../shared/events/arbitrate.ts";
import { type Commit, type EventEnvelope, parseCommit } from "../../shared/events/envelope.ts";
import { openCommit } from "../../shared/privacy/fields.ts";
import { deadLetterReport } from "../../shared/runner/dead-letters.ts";
import { readEndpoints } from "../../shared/runner/endpoints.ts";
import { seededRandom } from "../../shared/runner/faults.ts";
import { readSideApp } from "../fixtures/read-side-app.ts";
import { removeDataDir, startSystem, type TestSystem, view, waitFor } from "../support/system.ts";

const faults = "seed:20261126,duplicate:0.2,crash:0.15,replay:0.15,delay:1,roles:projection+relay";
let system: TestSystem;

beforeAll(async () => {
  process.env.CANON_FAULTS = faults;
  system = await startSystem({ app: readSideApp });
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

const accounts = ["f-0", "f-1", "f-2", "f-3", "f-4", "f-5"];

/** A seeded workload: per account, deposits and withdrawals (some refused), plus transfers. */
async function runWorkload(): Promise<string[]> {
  const random = seededRandom(7);
  const pick = (n: number) => Math.floor(random() * n);
  const scripts = accounts.map((accountId) =>
    Array.from({ length: 6 }, (_, i) => {
      const kind = pick(10);
      const amountCents = 1 + pick(400);
      if (kind < 5) return { service: "accounts", command: "Deposit", body: { accountId, amountCents } };
      if (kind < 8) return { service: "accounts", command: "Withdraw", body: { accountId, amountCents } };
      const to = accounts[(accounts.indexOf(accountId) + 1 + pick(accounts.length - 1)) % accounts.length];
      return {
        service: "transfers",
        command: "RequestTransfer",
        body: { transferId: `${accountId}-t${i}`, fromAccountId: accountId, toAccountId: to, amountCents },
      };
    }),
  );
  await Promise.all(
    accounts.map(async (accountId) => {
      expect((await system.command("accounts", "OpenAccount", { accountId, owner: accountId })).status).toBe(
        "accepted",
      );
      expect((await system.command("accounts", "Deposit", { accountId, amountCents: 500 })).status).toBe("accepted");
    }),
  );
  const transfers: string[] = [];
  await Promise.all(
    scripts.map(async (script) => {
      for (const step of script) {
        const outcome = await system.command(step.service, step.command, step.body);
        expect(["accepted", "rejected"]).toContain(outcome.status);
        if (step.command === "RequestTransfer") transfers.push(String(step.body.transferId));
      }
    }),
  );
  return transfers;
}

/** Every commit on the bus's stream, in stream order per shard (an aggregate lives on one shard). */
async function streamCommits(bus: string): Promise<Commit[]> {
  const streamName = system.resources.streamNames.get(bus) as string;
  const shards = (await kinesisClient().send(new ListShardsCommand({ StreamName: streamName }))).Shards ?? [];
  const commits: Commit[] = [];
  for (const shard of shards) {
    let iterator = (
      await kinesisClient().send(
        new GetShardIteratorCommand({
          StreamName: streamName,
          ShardId: shard.ShardId,
          ShardIteratorType: "TRIM_HORIZON",
        }),
      )
    ).ShardIterator;
    while (iterator) {
      const page = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      // Opened as every reader of the log opens them (the owner is sealed personal data).
      for (const record of page.Records ?? [])
        commits.push(await openCommit(parseCommit(record.Data ?? new Uint8Array())));
      if ((page.Records ?? []).length === 0 && (page.MillisBehindLatest ?? 0) === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return commits;
}

type Day = { date: string; depositsCents: number; withdrawalsCents: number; events: number };

interface Expected {
  readonly balances: Map<string, { owner: string; balanceCents: number; version: number }>;
  readonly statements: Map<string, { eventId: string; amountCents: number; balanceAfterCents: number }[]>;
  /** accounts/daily-totals, and its tiny-shard twin accounts/tiny-totals (both must equal the fold). */
  readonly days: Map<string, Day>;
  readonly tinyDays: Map<string, Day>;
}

/** The fold of the accepted account events: what every view must show. */
function fold(commits: readonly Commit[]): Expected {
  const expected: Expected = { balances: new Map(), statements: new Map(), days: new Map(), tinyDays: new Map() };
  const events: EventEnvelope[] = acceptedHistory(commits)
    .filter((c) => c.kind === "events" && c.aggregateType === "Account")
    .flatMap((c) => c.events);
  for (const e of events) {
    if (!isEventOf<AccountEvent>(e, accountEventTypes)) throw new Error(`${e.type}: not an Account event`);
    const event = e;
    const before = expected.balances.get(e.subject) ?? { owner: "", balanceCents: 0, version: 0 };
    const balanceCents = before.balanceCents + balanceDelta(event);
    const owner = event.type === "AccountOpened" ? event.data.owner : before.owner;
    expected.balances.set(e.subject, { owner, balanceCents, version: e.aggregateversion });
    if (event.type !== "AccountOpened") {
      const lines = expected.statements.get(e.subject) ?? [];
      lines.push({ eventId: e.id, amountCents: balanceDelta(event), balanceAfterCents: balanceCents });
      expected.statements.set(e.subject, lines);
    }
    if (event.type === "FundsDeposited" || event.type === "FundsWithdrawn") {
      const date = e.time.slice(0, 10);
      const day = expected.days.get(date) ?? { date, depositsCents: 0, withdrawalsCents: 0, events: 0 };
      const deposit = event.type === "FundsDeposited" ? event.data.amountCents : 0;
      const withdrawal = event.type === "FundsWithdrawn" ? event.data.amountCents : 0;
      const next = {
        date,
        depositsCents: day.depositsCents + deposit,
        withdrawalsCents: day.withdrawalsCents + withdrawal,
        events: day.events + 1,
      };
      expected.days.set(date, next);
      expected.tinyDays.set(date, next);
    }
  }
  return expected;
}

/** The views' contents as one string, whatever order their keys were met in. */
function canonical(views: Expected): string {
  const sorted = <T>(map: ReadonlyMap<string, T>) => [...map].sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify([sorted(views.balances), sorted(views.statements), sorted(views.days)]);
}

/** What the views show now, read over HTTP, in the shape of `Expected`. */
async function views(expected: Expected): Promise<Expected> {
  const actual: Expected = { balances: new Map(), statements: new Map(), days: new Map(), tinyDays: new Map() };
  for (const accountId of expected.balances.keys()) {
    const balance = await view<{ owner: string; balanceCents: number; version: number }>(
      system,
      `accounts/balances/${accountId}`,
    );
    if (balance) {
      actual.balances.set(accountId, {
        owner: balance.owner,
        balanceCents: balance.balanceCents,
        version: balance.version,
      });
    }
    const statement = await view<{ entries: { eventId: string; amountCents: number; balanceAfterCents: number }[] }>(
      system,
      `statements/history/${accountId}`,
    );
    if (statement) {
      actual.statements.set(
        accountId,
        statement.entries.map(({ eventId, amountCents, balanceAfterCents }) => ({
          eventId,
          amountCents,
          balanceAfterCents,
        })),
      );
    }
  }
  for (const date of expected.days.keys()) {
    const day = await view<Day>(system, `accounts/daily-totals/${date}`);
    if (day) actual.days.set(date, day);
    const tiny = await view<Day>(system, `accounts/tiny-totals/${date}`);
    if (tiny) actual.tinyDays.set(date, tiny);
  }
  return actual;
}

describe("views under injected faults", () => {
  // About 25 s on an idle 2-core machine; the margin is for machines busy with other work.
  it("equal the fold of the accepted events, whatever was duplicated, crashed, replayed or delayed", {
    timeout: 120_000,
  }, async () => {
    const transfers = await runWorkload();
    // Let the sagas finish, so the stream is complete.
    for (const transferId of transfers) {
      await waitFor(async () => {
        const item = await view<{ status: string }>(system, `transfers/transfers/${transferId}`);
        return item?.status === "COMPLETED" || item?.status === "FAILED" ? item : undefined;
      }, `transfer ${transferId} finished`);
    }
    const expected = fold(await streamCommits("core"));
    expect(expected.balances.size).toBe(accounts.length);
    expect(expected.days.size).toBeGreaterThan(0);

    let actual: Expected | undefined;
    try {
      await waitFor(
        async () => {
          actual = await views(expected);
          return canonical(actual) === canonical(expected) ? true : undefined;
        },
        "every view equal to the fold of the stream",
        40_000,
      );
    } finally {
      // On a timeout, show the difference.
      expect(actual?.balances).toEqual(expected.balances);
      expect(actual?.statements).toEqual(expected.statements);
      expect(actual?.days).toEqual(expected.days);
      expect(actual?.tinyDays).toEqual(expected.tinyDays);
    }
    // Money is conserved: each balance is the sum of its statement; none is negative.
    for (const [accountId, balance] of expected.balances) {
      const entries = actual?.statements.get(accountId) ?? [];
      expect(entries.reduce((sum, e) => sum + e.amountCents, 0)).toBe(balance.balanceCents);
      expect(balance.balanceCents).toBeGreaterThanOrEqual(0);
    }
    // The faults did happen, and none of them parked or dead-lettered anything.
    const injected = system.runner.faultCounts();
    expect(injected.crash).toBeGreaterThan(0);
    expect(injected.duplicate).toBeGreaterThan(0);
    expect(injected.replay).toBeGreaterThan(0);
    const report = await deadLetterReport(readEndpoints(system.dataDir));
    expect(report.parked).toEqual([]);
    expect(report.deadLetterQueues.filter((q) => q.messages > 0)).toEqual([]);
  });

  it("answers 404 for a key no event has produced, in every view", async () => {
    for (const path of [
      "accounts/balances/never-opened",
      "accounts/daily-totals/1999-01-01",
      "statements/history/never-opened",
      "transfers/transfers/never-requested",
    ]) {
      expect((await system.get(`/views/${path}`)).status, path).toBe(404);
    }
  });
});
