/**
 * Load for the bench: deposits through the HTTP API, each followed until the balances view
 * shows it, in closed loops (each client waits for its command before the next) or an open
 * loop (arrivals on a schedule, whatever the answers). Every run is bounded: clients stop
 * sending at the end of the run, in-flight commands get a drain time, and what is still
 * unfinished then is counted as such (its latency a lower bound), never waited for.
 *
 * One watcher (the Tracker) follows every command for all clients: each poll reads the balances
 * items of the accounts with commands in flight and the outcomes of the commands whose version
 * is not known yet (BatchGetItem, 100 keys a call, with the bench's own uncounted client), so
 * 128 clients add one poll, not 128. The item read is the one `GET /views/accounts/balances/{id}`
 * serves; the latency ends at the first poll that sees the view at or past the command's version.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as wait } from "node:timers/promises";
import { BatchGetCommand } from "@aws-sdk/lib-dynamodb";
import { seededRandom } from "../shared/runner/faults.ts";
import type { BenchAws } from "./aws.ts";

/** Waits `ms`, or not at all when the moment has passed already (a negative delay warns). */
const sleep = (ms: number) => wait(Math.max(0, ms));

export type CommandStatus = "pending" | "accepted" | "rejected" | "conflicted" | "failed";

/** One command the bench sent, and what became of it (times in epoch ms, this machine's clock). */
export interface CommandRecord {
  readonly commandId: string;
  readonly accountId: string;
  /** Which run sent it (`pipeline`, `scaling-32`, `open-loop`, `hot`, `trace`, `open`). */
  readonly run: string;
  /** When it was sent, or for the open loop when it was scheduled to be sent. */
  readonly sentAt: number;
  /** The API answered 202. */
  postedAt?: number;
  /** How long the POST took (retries included): the API function's time for it. */
  postMs?: number;
  /** Its event's aggregate version, once known (from the outcome or the client's own sequence). */
  version?: number;
  status: CommandStatus;
  /** The balances view first seen at or past `version`. */
  shownAt?: number;
  /** `shownAt`, or when the outcome was seen rejected or conflicted, or the POST gave up. */
  finishedAt?: number;
}

interface Open {
  readonly record: CommandRecord;
  readonly done: () => void;
}

export interface TrackerTables {
  readonly outcomes: string;
  readonly balances: string;
}

/** Reads `keys` (ids) of `table`, 100 a call; returns the items by id. */
export async function batchGetById(
  aws: BenchAws,
  table: string,
  ids: readonly string[],
  projection?: string,
): Promise<Map<string, Record<string, unknown>>> {
  const found = new Map<string, Record<string, unknown>>();
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += 100) chunks.push(ids.slice(i, i + 100) as string[]);
  await Promise.all(
    chunks.map(async (chunk) => {
      let keys: Record<string, unknown>[] | undefined = chunk.map((id) => ({ id }));
      for (let attempt = 0; keys !== undefined && keys.length > 0 && attempt < 10; attempt++) {
        const result = await aws.dynamo.send(
          new BatchGetCommand({
            RequestItems: {
              [table]: {
                Keys: keys,
                ...(projection === undefined
                  ? {}
                  : { ProjectionExpression: projection.replace(/\w+/g, (w) => `#${w}`) }),
                ...(projection === undefined
                  ? {}
                  : {
                      ExpressionAttributeNames: Object.fromEntries(projection.split(/\W+/).map((w) => [`#${w}`, w])),
                    }),
              },
            },
          }),
        );
        for (const item of result.Responses?.[table] ?? []) found.set(String(item.id), item);
        keys = result.UnprocessedKeys?.[table]?.Keys as Record<string, unknown>[] | undefined;
        if (keys !== undefined && keys.length > 0) await sleep(20 * 2 ** attempt);
      }
    }),
  );
  return found;
}

/** Follows commands until the balances view shows them (or their outcome says they will not). */
export class Tracker {
  private readonly open = new Map<string, Open>();
  /** Per account: the first time each higher version was seen, in order. */
  private readonly seen = new Map<string, { at: number; version: number }[]>();
  private readonly everything: CommandRecord[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  /** Polls made and their total time, sleep included: the resolution the latencies really had. */
  readonly polls = { count: 0, ms: 0 };

  private readonly aws: BenchAws;
  private readonly tables: TrackerTables;
  private readonly pollMs: number;

  constructor(aws: BenchAws, tables: TrackerTables, pollMs: number) {
    this.aws = aws;
    this.tables = tables;
    this.pollMs = pollMs;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const started = Date.now();
        if (this.open.size > 0) {
          try {
            await this.poll();
          } catch (error) {
            console.error("bench: a tracker poll failed:", (error as Error).message);
          }
        }
        await sleep(this.pollMs - (Date.now() - started));
        if (this.open.size > 0) {
          this.polls.count += 1;
          this.polls.ms += Date.now() - started;
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Every command followed so far. */
  records(): readonly CommandRecord[] {
    return this.everything;
  }

  /** Commands sent and not finished yet. */
  inFlight(): number {
    return this.open.size;
  }

  /** Registers a command the API took (its id is known), for `records()`; `follow` watches it. */
  add(record: CommandRecord): CommandRecord {
    this.everything.push(record);
    return record;
  }

  /** Resolves when the command is finished (shown, rejected, conflicted); it stays followed until then. */
  follow(record: CommandRecord): Promise<void> {
    if (record.finishedAt !== undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.open.set(record.commandId, { record, done: resolve });
      this.resolveShown(record);
    });
  }

  /** Marks a command given up on before it reached the API. */
  fail(record: CommandRecord): void {
    record.status = "failed";
    record.finishedAt = Date.now();
  }

  /** The view's version of each account that has no command in flight (so the version is exact). */
  async settledVersions(accounts: readonly string[]): Promise<Map<string, number>> {
    const busy = new Set([...this.open.values()].map((o) => o.record.accountId));
    const quiet = accounts.filter((a) => !busy.has(a));
    const items = await batchGetById(this.aws, this.tables.balances, quiet, "id, version");
    const out = new Map<string, number>();
    for (const a of quiet) {
      const v = Number(items.get(a)?.version ?? 0);
      if (v > 0) out.set(a, v);
    }
    return out;
  }

  private async poll(): Promise<void> {
    const open = [...this.open.values()].map((o) => o.record);
    const accounts = [...new Set(open.map((r) => r.accountId))];
    const unknown = open.filter((r) => r.version === undefined && r.postedAt !== undefined).map((r) => r.commandId);
    const [views, outcomes] = await Promise.all([
      batchGetById(this.aws, this.tables.balances, accounts, "id, version").then((items) => ({
        items,
        at: Date.now(),
      })),
      batchGetById(this.aws, this.tables.outcomes, unknown, "id, status, events"),
    ]);
    for (const account of accounts) {
      const version = Number(views.items.get(account)?.version ?? 0);
      const history = this.seen.get(account) ?? [];
      if (version > (history.at(-1)?.version ?? 0)) history.push({ at: views.at, version });
      this.seen.set(account, history);
    }
    for (const [commandId, outcome] of outcomes) {
      const entry = this.open.get(commandId);
      if (entry === undefined) continue;
      const status = outcome.status as CommandStatus;
      if (status === "accepted") {
        const events = (outcome.events ?? []) as { version?: number }[];
        const version = Number(events.at(-1)?.version);
        if (Number.isFinite(version) && version > 0) entry.record.version = version;
      } else if (status === "rejected" || status === "conflicted") {
        entry.record.status = status;
        this.finish(entry, Date.now());
      }
    }
    for (const record of open) this.resolveShown(record);
  }

  private resolveShown(record: CommandRecord): void {
    const entry = this.open.get(record.commandId);
    if (entry === undefined || record.version === undefined) return;
    const version = record.version;
    const shown = (this.seen.get(record.accountId) ?? []).find((h) => h.version >= version && h.at >= record.sentAt);
    if (shown === undefined) return;
    record.status = "accepted";
    record.shownAt = shown.at;
    this.finish(entry, shown.at);
  }

  private finish(entry: Open, at: number): void {
    entry.record.finishedAt = at;
    this.open.delete(entry.record.commandId);
    entry.done();
  }
}

export interface LoadContext {
  readonly url: string;
  readonly tracker: Tracker;
  /** Unique per bench run: idempotency keys never collide with an earlier run's. */
  readonly runId: string;
  /** Accounts opened so far. */
  readonly opened: Set<string>;
}

/** POSTs a command; retried (same key) while the API does not answer 202. Returns its command id. */
export async function postCommand(url: string, path: string, body: object, key: string): Promise<string> {
  let last = "";
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const response = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify(body),
      });
      if (response.status === 202) return ((await response.json()) as { commandId: string }).commandId;
      last = `${response.status} ${await response.text()}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`POST ${path} kept failing: ${last}`);
}

/** Sends one deposit and follows it; resolves when it is finished or `deadline` passes. */
async function deposit(
  ctx: LoadContext,
  run: string,
  accountId: string,
  key: string,
  amountCents: number,
  sentAt: number,
  deadline: number,
  expectedVersion?: number,
): Promise<CommandRecord> {
  const pending: { record?: CommandRecord } = {};
  try {
    const posting = Date.now();
    const commandId = await postCommand(ctx.url, "/commands/accounts/Deposit", { accountId, amountCents }, key);
    const record = ctx.tracker.add({ commandId, accountId, run, sentAt, status: "pending", version: expectedVersion });
    pending.record = record;
    record.postedAt = Date.now();
    record.postMs = record.postedAt - posting;
    await Promise.race([ctx.tracker.follow(record), sleep(deadline - Date.now())]);
    return record;
  } catch {
    const record = pending.record ?? ctx.tracker.add({ commandId: key, accountId, run, sentAt, status: "pending" });
    ctx.tracker.fail(record);
    return record;
  }
}

/** Opens the accounts not opened yet (all at once) and waits until each shows in the view. */
export async function ensureOpen(ctx: LoadContext, accounts: readonly string[], timeoutMs = 120_000): Promise<void> {
  const missing = accounts.filter((a) => !ctx.opened.has(a));
  const deadline = Date.now() + timeoutMs;
  const records = await Promise.all(
    missing.map(async (accountId) => {
      const sentAt = Date.now();
      const commandId = await postCommand(
        ctx.url,
        "/commands/accounts/OpenAccount",
        { accountId, owner: "bench" },
        `${ctx.runId}-open-${accountId}`,
      );
      const record = ctx.tracker.add({ commandId, accountId, run: "open", sentAt, status: "pending", version: 1 });
      record.postedAt = Date.now();
      await Promise.race([ctx.tracker.follow(record), sleep(deadline - Date.now())]);
      return record;
    }),
  );
  const late = records.filter((r) => r.finishedAt === undefined);
  if (late.length > 0) throw new Error(`bench: ${late.length} accounts not open after ${timeoutMs / 1000} s`);
  for (const a of missing) ctx.opened.add(a);
}

/** A latency distribution where unfinished commands count at their time so far (a lower bound). */
export interface Latency {
  readonly p50: number;
  readonly p99: number;
  /** True when the figure is a lower bound: an unfinished command sits at or below it. */
  readonly p50AtLeast: boolean;
  readonly p99AtLeast: boolean;
  readonly samples: number;
}

export function latencyOf(samples: readonly { ms: number; censored: boolean }[]): Latency {
  const sorted = [...samples].sort((a, b) => a.ms - b.ms);
  const at = (p: number) => {
    if (sorted.length === 0) return { ms: Number.NaN, atLeast: false };
    const k = Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length));
    return {
      ms: Math.round((sorted[k] as { ms: number }).ms),
      atLeast: sorted.slice(0, k + 1).some((s) => s.censored),
    };
  };
  const p50 = at(50);
  const p99 = at(99);
  return { p50: p50.ms, p99: p99.ms, p50AtLeast: p50.atLeast, p99AtLeast: p99.atLeast, samples: sorted.length };
}

/** What one bounded run did. */
export interface RunStats {
  readonly run: string;
  readonly seconds: number;
  /** Commands sent (their POST started). */
  readonly sent: number;
  /**
   * Accepted commands shown in a window as long as the run that opens at its first completion
   * (and closes at the drain deadline at the latest): a run's completions come one latency after
   * its sends, so counting from its start would undercount a run only a few latencies long.
   */
  readonly acceptedInWindow: number;
  /** `acceptedInWindow` per second of that window. */
  readonly commandsPerSecond: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly conflicted: number;
  /** POSTs given up on (the API kept failing). */
  readonly failed: number;
  /** Still unfinished when the drain time ran out (they stay followed, as later runs' backlog). */
  readonly unfinished: number;
  /** Commands of earlier runs still in flight when this one started. */
  readonly backlogAtStart: number;
  /** Sent → shown (or rejected); unfinished ones at their time so far. */
  readonly latencyMs: Latency;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly drainedAt: number;
  /** How often the watcher really polled during the run (ms between polls, sleep included). */
  readonly pollEveryMs: number;
  /**
   * The bench process's event-loop delay during the run (ms): the API, the clients and the
   * watcher share it, so a high figure means the bench itself added to the latencies.
   */
  readonly benchLoopDelayMs: { readonly p99: number; readonly max: number };
  readonly records: readonly CommandRecord[];
}

/** Watches the bench process's own event loop and its watcher's pace for one run. */
function instrument(tracker: Tracker) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const polls = { ...tracker.polls };
  return () => {
    delay.disable();
    const count = tracker.polls.count - polls.count;
    return {
      pollEveryMs: count > 0 ? Math.round((tracker.polls.ms - polls.ms) / count) : 0,
      benchLoopDelayMs: { p99: Math.round(delay.percentile(99) / 1e6), max: Math.round(delay.max / 1e6) },
    };
  };
}

function summarize(
  run: string,
  records: readonly CommandRecord[],
  window: { startedAt: number; endedAt: number; drainedAt: number },
  backlogAtStart: number,
  watched: Pick<RunStats, "pollEveryMs" | "benchLoopDelayMs">,
): RunStats {
  const { startedAt, endedAt, drainedAt } = window;
  const done = (r: CommandRecord) => r.finishedAt !== undefined && r.finishedAt <= drainedAt;
  const count = (status: CommandStatus) => records.filter((r) => done(r) && r.status === status).length;
  const shown = records
    .filter((r) => r.status === "accepted" && r.shownAt !== undefined && r.shownAt <= drainedAt)
    .map((r) => r.shownAt as number);
  const opens = Math.min(...shown);
  const closes = Math.min(opens + (endedAt - startedAt), drainedAt);
  const acceptedInWindow = shown.filter((at) => at <= closes).length;
  const windowSeconds = shown.length === 0 ? 1 : Math.max(closes - opens, 1_000) / 1000;
  const latencyMs = latencyOf(
    records
      .filter((r) => r.status !== "failed")
      .map((r) =>
        done(r)
          ? { ms: (r.finishedAt as number) - r.sentAt, censored: false }
          : { ms: drainedAt - r.sentAt, censored: true },
      ),
  );
  const seconds = (endedAt - startedAt) / 1000;
  return {
    run,
    seconds: Math.round(seconds * 10) / 10,
    sent: records.length,
    acceptedInWindow,
    commandsPerSecond: Math.round((acceptedInWindow / windowSeconds) * 10) / 10,
    accepted: count("accepted"),
    rejected: count("rejected"),
    conflicted: count("conflicted"),
    failed: records.filter((r) => r.status === "failed").length,
    unfinished: records.filter((r) => !done(r) && r.status !== "failed").length,
    backlogAtStart,
    latencyMs,
    startedAt,
    endedAt,
    drainedAt,
    ...watched,
    records,
  };
}

export interface ClosedLoopOptions {
  readonly run: string;
  readonly clients: number;
  readonly accounts: readonly string[];
  readonly seconds: number;
  readonly drainSeconds: number;
  /** Called when the run's window starts (after the accounts' versions are read). */
  readonly onStart?: () => void;
}

/**
 * Closed loop: `clients` clients, each sending a deposit and waiting until the view shows it
 * before sending the next, for `seconds`; then up to `drainSeconds` for the last ones. With no
 * more clients than accounts each client owns its accounts and knows their next version; with
 * more, clients share accounts and learn each version from the command's outcome.
 */
export async function closedLoop(ctx: LoadContext, options: ClosedLoopOptions): Promise<RunStats> {
  const { clients, accounts } = options;
  const exclusive = clients <= accounts.length;
  const known = exclusive ? await ctx.tracker.settledVersions(accounts) : new Map<string, number>();
  const backlogAtStart = ctx.tracker.inFlight();
  options.onStart?.();
  const watched = instrument(ctx.tracker);
  const startedAt = Date.now();
  const endedAt = startedAt + options.seconds * 1000;
  const drainedAt = endedAt + options.drainSeconds * 1000;
  const records: CommandRecord[] = [];
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const mine = exclusive ? accounts.filter((_, i) => i % clients === c) : [accounts[c % accounts.length] as string];
      for (let n = 0; Date.now() < endedAt; n++) {
        const accountId = mine[n % mine.length] as string;
        const current = known.get(accountId);
        const expected = exclusive && current !== undefined ? current + 1 : undefined;
        const key = `${ctx.runId}-${options.run}-${c}-${n}`;
        const record = await deposit(ctx, options.run, accountId, key, 1 + (n % 100), Date.now(), drainedAt, expected);
        records.push(record);
        if (record.status === "accepted" && record.version !== undefined) known.set(accountId, record.version);
        else known.delete(accountId); // unknown again: the next command learns it from its outcome
        if (record.finishedAt === undefined) break; // drain time ran out
      }
    }),
  );
  return summarize(options.run, records, { startedAt, endedAt, drainedAt }, backlogAtStart, watched());
}

export interface OpenLoopOptions {
  readonly run: string;
  /** Offered commands per second. */
  readonly rate: number;
  readonly seconds: number;
  readonly drainSeconds: number;
  readonly accounts: readonly string[];
  /** Arrivals beyond this many commands in flight are not sent (counted as shed). */
  readonly maxInFlight: number;
  readonly arrivals: "poisson" | "even";
  readonly seed: number;
  /** Called as the first arrival is due (e.g. to snapshot counters). */
  readonly onStart?: () => void;
}

export interface OpenLoopStats extends RunStats {
  /** The rate asked for. */
  readonly rate: number;
  /** Arrivals the schedule held (Poisson: about rate × seconds). */
  readonly offered: number;
  readonly offeredPerSecond: number;
  /** Arrivals not sent because `maxInFlight` commands were in flight. */
  readonly shed: number;
  /** How late the bench sent arrivals behind their schedule (its own event loop's lag). */
  readonly sendLagMs: { readonly p50: number; readonly max: number };
}

/**
 * Open loop: arrivals at `rate`/s on a schedule fixed in advance (Poisson or evenly spaced),
 * sent whatever the earlier ones' fate; latency is measured from each arrival's scheduled time,
 * so a slow system cannot hide its queueing (no coordinated omission).
 */
export async function openLoop(ctx: LoadContext, options: OpenLoopOptions): Promise<OpenLoopStats> {
  const random = seededRandom(options.seed);
  const backlogAtStart = ctx.tracker.inFlight();
  const watched = instrument(ctx.tracker);
  const startedAt = Date.now() + 20;
  const endedAt = startedAt + options.seconds * 1000;
  const drainedAt = endedAt + options.drainSeconds * 1000;
  const schedule: number[] = [];
  for (let t = startedAt; t < endedAt; ) {
    schedule.push(t);
    t += options.arrivals === "even" ? 1000 / options.rate : (-Math.log(1 - random()) / options.rate) * 1000;
  }
  const records: CommandRecord[] = [];
  const lags: number[] = [];
  const sending: Promise<unknown>[] = [];
  let inFlight = 0;
  let shed = 0;
  options.onStart?.();
  const launch = (at: number, n: number) => {
    if (inFlight >= options.maxInFlight) {
      shed += 1;
      return;
    }
    inFlight += 1;
    lags.push(Date.now() - at);
    const accountId = options.accounts[n % options.accounts.length] as string;
    const key = `${ctx.runId}-${options.run}-${n}`;
    sending.push(
      deposit(ctx, options.run, accountId, key, 1 + (n % 100), at, drainedAt).then((record) => {
        records.push(record);
        inFlight -= 1;
      }),
    );
  };
  for (let n = 0; n < schedule.length; ) {
    while (n < schedule.length && (schedule[n] as number) <= Date.now()) {
      launch(schedule[n] as number, n);
      n += 1;
    }
    if (n < schedule.length) await sleep((schedule[n] as number) - Date.now());
  }
  await Promise.all(sending); // each resolves by the drain deadline at the latest
  const stats = summarize(options.run, records, { startedAt, endedAt, drainedAt }, backlogAtStart, watched());
  lags.sort((a, b) => a - b);
  return {
    ...stats,
    rate: options.rate,
    offered: schedule.length,
    offeredPerSecond: Math.round((schedule.length / options.seconds) * 10) / 10,
    shed,
    sendLagMs: { p50: Math.round(lags[Math.floor(lags.length / 2)] ?? 0), max: Math.round(lags.at(-1) ?? 0) },
  };
}
