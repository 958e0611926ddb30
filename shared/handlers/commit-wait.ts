/**
 * The command handler's wait for its commits, until each shows as won or lost.
 *
 * It asks the arbiter first: the relay persists each aggregate's head (its version and the
 * commit that made it) once that commit's events are on the topic, so a head that names a
 * commit of the chain settles it and every one before it, about one relay hop after the append
 * instead of the further topic → queue → state projection hop. Only when the head has moved
 * past the chain without naming it (another writer took the version, or appended after) does it
 * look at the service's own state (law D: the state projection records commits from the bus like
 * everyone else): the state projection writes a commit's marker before the state moves past it,
 * so a state past a commit's expected version without its marker means the commit lost.
 *
 * One look covers every commit waited for in this instance: the batches a handler instance has
 * in hand at once (the local runner hands one several, like Lambda's concurrency) share one
 * BatchGetItem of their aggregates' heads a look, and of states and markers when a head cannot
 * tell alone, instead of each batch polling on its own.
 */
import { type AggregateHead, aggregateKey } from "../events/arbitrate.ts";
import type { Commit } from "../events/envelope.ts";
import { areCommitsAccepted, readStates } from "./aggregate-state.ts";
import { readHeads } from "./arbitration-heads.ts";

export type CommitFate = "accepted" | "lost" | "pending";

/** One aggregate's commits of a batch, in stream order; each after the first names the one before. */
export interface CommitChain {
  readonly aggregateId: string;
  readonly commits: readonly Commit[];
}

/** What a look reads of an aggregate's state: its version and the commit that made it. */
export interface SeenState {
  readonly version: number;
  readonly lastCommitId?: string;
}

/**
 * How long commits have lately taken to show in this instance's service state (an average of
 * the last ones). The first look is timed by it, so a batch costs a few reads rather than one
 * every few milliseconds from the moment it is appended.
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

/**
 * The commits of a chain whose markers a look must read to judge them: those the state has moved
 * past, unless the state alone tells (it names a commit of the chain as the one that made its
 * version: that commit and every one before it won, since each wins only right after the one before).
 */
export function markersToRead(
  chain: CommitChain,
  state: SeenState | undefined,
  fates: ReadonlyMap<string, CommitFate>,
) {
  const version = state?.version ?? 0;
  const madeBy = chain.commits.findIndex((c) => c.commitId === state?.lastCommitId);
  return chain.commits.filter((c, i) => !fates.has(c.commitId) && i > madeBy && c.expectedVersion < version);
}

/**
 * Records what a look shows of a chain (its aggregate's state, and the markers read of the
 * commits `markersToRead` named); true once every commit of it has a fate. A commit after a lost
 * one is lost too: arbitration accepts a pipelined commit only right after its predecessor.
 * Read-your-writes: a commit that won counts only once the state shows all of its events.
 */
export function judgeChain(
  chain: CommitChain,
  state: SeenState | undefined,
  markers: ReadonlySet<string>,
  fates: Map<string, CommitFate>,
): boolean {
  const version = state?.version ?? 0;
  const madeBy = chain.commits.findIndex((c) => c.commitId === state?.lastCommitId);
  for (const [index, commit] of chain.commits.entries()) {
    if (fates.has(commit.commitId)) continue;
    if (index < madeBy) {
      fates.set(commit.commitId, "accepted"); // a later commit of the chain made the state's version
      continue;
    }
    if (index === madeBy) {
      // It made the state's version; read-your-writes: once the state shows all of its events.
      if (version < commit.expectedVersion + commit.events.length) return false;
      fates.set(commit.commitId, "accepted");
      continue;
    }
    if (commit.expectedVersion >= version) return false; // not reached yet
    if (!markers.has(commit.commitId)) {
      // Another commit took this version: this one and every one decided after it lost.
      for (const later of chain.commits.slice(index)) fates.set(later.commitId, "lost");
      return true;
    }
    if (version < commit.expectedVersion + commit.events.length) return false; // not all its events applied yet
    fates.set(commit.commitId, "accepted");
  }
  return true;
}

/** What a look at the arbiter's head makes of a chain. */
export type HeadVerdict = "settled" | "open" | "ask-state";

/**
 * Records what the arbiter's persisted head shows of a chain: "settled" once every commit of it
 * has a fate, "open" while the arbiter has not judged the next one yet, "ask-state" when the
 * head has moved past it without naming it (won, then built on by another writer, or lost: only
 * the state's markers tell). The head is persisted only after the commit's events are published,
 * so "accepted" here means on the topic, on its way to every subscriber.
 */
export function judgeChainByHead(
  chain: CommitChain,
  head: AggregateHead | undefined,
  fates: Map<string, CommitFate>,
): HeadVerdict {
  const version = head?.version ?? 0;
  const madeBy = chain.commits.findIndex((c) => c.commitId === head?.lastCommitId);
  // The head's commit won, and so did every one before it: each wins only right after the one before.
  for (const c of chain.commits.slice(0, madeBy + 1)) fates.set(c.commitId, "accepted");
  const index = chain.commits.findIndex((c) => !fates.has(c.commitId));
  if (index < 0) return "settled";
  const next = chain.commits[index] as Commit;
  if (version < next.expectedVersion) return "open";
  if (version === next.expectedVersion) {
    // Its version is the head's. Decided on the accepted history alone, it is still to be judged;
    // pipelined after a commit the head does not name, another commit made that version: it lost.
    const predecessor = next.previousCommitId;
    if (predecessor === undefined || predecessor === head?.lastCommitId) return "open";
    for (const later of chain.commits.slice(index)) fates.set(later.commitId, "lost");
    return "settled";
  }
  return "ask-state";
}

/** A batch waiting for its chains. */
interface Waiter {
  open: CommitChain[];
  readonly fates: Map<string, CommitFate>;
  readonly started: number;
  readonly deadline: number;
  readonly everyMs: number;
  /** When it wants its next look. */
  dueAt: number;
  /** When its last two looks were (ms after it started), to learn the pace from. */
  previousLookMs: number;
  lookMs: number;
  readonly done: (error?: unknown) => void;
}

/** Where a handler learns its commits' fates: its bus's arbitration heads (if it may read them) and its state table. */
export interface CommitWaitTables {
  readonly stateTable: string;
  readonly arbitrationTable?: string | undefined;
}

/** The batches waiting on one state table (and arbitration table) in this instance, looked at together. */
class CommitWatcher {
  readonly #tables: CommitWaitTables;
  readonly #waiters = new Set<Waiter>();
  #looking = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;

  constructor(tables: CommitWaitTables) {
    this.#tables = tables;
  }

  add(waiter: Waiter): void {
    this.#waiters.add(waiter);
    this.#schedule();
  }

  /** Sets the timer for the earliest look a waiter wants (none while a look is under way: it reschedules). */
  #schedule(): void {
    if (this.#looking || this.#waiters.size === 0) return;
    const at = Math.min(...[...this.#waiters].map((w) => Math.min(w.dueAt, w.deadline)));
    if (this.#timer !== undefined && at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => void this.#look(), Math.max(0, at - Date.now()));
  }

  /**
   * One look for every waiter: their aggregates' heads; then, for the chains a head cannot tell,
   * the aggregates' states, and the markers the states cannot tell without.
   */
  async #look(): Promise<void> {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    this.#looking = true;
    const waiters = [...this.#waiters];
    const now = Date.now();
    try {
      for (const w of waiters) {
        w.previousLookMs = w.lookMs;
        w.lookMs = now - w.started;
      }
      const settled = new Set<CommitChain>();
      const askState: { readonly waiter: Waiter; readonly chain: CommitChain }[] = [];
      const { arbitrationTable, stateTable } = this.#tables;
      const heads =
        arbitrationTable === undefined
          ? undefined
          : await readHeads(
              arbitrationTable,
              waiters.flatMap((w) => w.open.map(chainKey)),
            );
      for (const w of waiters) {
        for (const chain of w.open) {
          const verdict =
            heads === undefined ? "ask-state" : judgeChainByHead(chain, heads.get(chainKey(chain)), w.fates);
          if (verdict === "settled") settled.add(chain);
          else if (verdict === "ask-state") askState.push({ waiter: w, chain });
        }
      }
      if (askState.length > 0) {
        const states: ReadonlyMap<string, SeenState> = await readStates(
          stateTable,
          askState.map((a) => a.chain.aggregateId),
          null,
        );
        const judgeable = askState.flatMap(({ waiter, chain }) =>
          markersToRead(chain, states.get(chain.aggregateId), waiter.fates),
        );
        const markers =
          judgeable.length === 0
            ? new Set<string>()
            : await areCommitsAccepted(
                stateTable,
                judgeable.map((c) => c.commitId),
              );
        for (const { waiter, chain } of askState) {
          if (judgeChain(chain, states.get(chain.aggregateId), markers, waiter.fates)) settled.add(chain);
        }
      }
      const after = Date.now();
      for (const w of waiters) {
        w.open = w.open.filter((chain) => !settled.has(chain));
        if (w.open.length === 0) {
          // The commits showed between the look before the one that saw them and that one: learning
          // from the midpoint lets the pace fall as fast as it rises.
          visibility.typicalMs = learnCommitVisibility(visibility.typicalMs, (w.previousLookMs + w.lookMs) / 2);
          this.#finish(w);
        } else if (after >= w.deadline) {
          this.#finish(w);
        } else {
          // Looked at now, whoever's look it was: the next one is a pace away.
          w.dueAt = Math.max(w.dueAt, now + w.everyMs);
        }
      }
    } catch (error) {
      for (const w of waiters) this.#finish(w, error);
    } finally {
      this.#looking = false;
      this.#schedule();
    }
  }

  #finish(waiter: Waiter, error?: unknown): void {
    this.#waiters.delete(waiter);
    waiter.done(error);
  }
}

const watchers = new Map<string, CommitWatcher>();

/** The arbiter's key of the aggregate a chain is for. */
const chainKey = (chain: CommitChain): string =>
  chain.commits[0] === undefined ? chain.aggregateId : aggregateKey(chain.commits[0]);

/**
 * The fate of each commit (by commit id), once every chain is settled or `waitMs` has passed
 * (then the unsettled ones are "pending"). Rejects if a look fails (the batch resumes from its
 * recorded outcomes).
 */
export async function awaitCommits(
  tables: string | CommitWaitTables,
  chains: readonly CommitChain[],
  waitMs: number,
): Promise<Map<string, CommitFate>> {
  const fates = new Map<string, CommitFate>();
  const open = chains.filter((chain) => chain.commits.length > 0);
  if (open.length > 0) {
    const where: CommitWaitTables = typeof tables === "string" ? { stateTable: tables } : tables;
    const id = `${where.stateTable}|${where.arbitrationTable ?? ""}`;
    let watcher = watchers.get(id);
    if (watcher === undefined) {
      watcher = new CommitWatcher(where);
      watchers.set(id, watcher);
    }
    const schedule = commitLookSchedule(visibility.typicalMs);
    const started = Date.now();
    const add = watcher.add.bind(watcher);
    await new Promise<void>((resolve, reject) =>
      add({
        open,
        fates,
        started,
        deadline: started + waitMs,
        everyMs: schedule.everyMs,
        dueAt: started + schedule.firstMs,
        previousLookMs: 0,
        lookMs: 0,
        done: (error) => (error === undefined ? resolve() : reject(error)),
      }),
    );
  }
  for (const chain of chains)
    for (const c of chain.commits) if (!fates.has(c.commitId)) fates.set(c.commitId, "pending");
  return fates;
}
