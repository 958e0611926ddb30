/**
 * The command handler's wait for its commits: it looks at the service's own state (law D: the
 * state projection records them from the bus like everyone else) until each commit shows as won
 * or lost. One look covers every aggregate of a batch: one BatchGetItem of the states, one of
 * the commit markers. The state projection writes a commit's marker before the state moves past
 * it, so a state past a commit's expected version without its marker means the commit lost.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Commit } from "../events/envelope.ts";
import { areCommitsAccepted, readStates } from "./aggregate-state.ts";

export type CommitFate = "accepted" | "lost" | "pending";

/** One aggregate's commits of a batch, in stream order; each after the first names the one before. */
export interface CommitChain {
  readonly aggregateId: string;
  readonly commits: readonly Commit[];
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
 * The fate of each commit (by commit id), once every chain is settled or `waitMs` has passed
 * (then the unsettled ones are "pending"). A commit after a lost one in its chain is lost too:
 * arbitration accepts a pipelined commit only right after its predecessor.
 */
export async function awaitCommits(
  stateTable: string,
  chains: readonly CommitChain[],
  waitMs: number,
): Promise<Map<string, CommitFate>> {
  const fates = new Map<string, CommitFate>();
  const started = Date.now();
  const deadline = started + waitMs;
  const schedule = commitLookSchedule(visibility.typicalMs);
  let open = chains.filter((chain) => chain.commits.length > 0);
  let wait = schedule.firstMs;
  // The commits showed between the look before the one that saw them and that one: learning
  // from the midpoint lets the pace fall as fast as it rises (learning from the look itself
  // would keep a slow first look slow).
  let previousLookMs = 0;
  let lookMs = 0;
  while (open.length > 0) {
    await sleep(Math.max(0, Math.min(wait, deadline - Date.now())));
    previousLookMs = lookMs;
    lookMs = Date.now() - started;
    const states = await readStates(
      stateTable,
      open.map((chain) => chain.aggregateId),
      null,
    );
    const versionOf = (chain: CommitChain) => states.get(chain.aggregateId)?.version ?? 0;
    // The state names the commit that made its version: a chain whose last commit made it won
    // whole (each commit wins only right after the one before), with no marker to read.
    open = open.filter((chain) => {
      const state = states.get(chain.aggregateId);
      const last = chain.commits.at(-1);
      if (last === undefined || state?.lastCommitId !== last.commitId) return true;
      if (state.version < last.expectedVersion + last.events.length) return true; // its events not all applied yet
      for (const commit of chain.commits) fates.set(commit.commitId, "accepted");
      return false;
    });
    // Only commits the state has moved past can be judged: their markers, in one read.
    const judgeable: Commit[] = open.flatMap((chain) =>
      chain.commits.filter((c) => c.expectedVersion < versionOf(chain)),
    );
    const markers =
      judgeable.length === 0
        ? new Set<string>()
        : await areCommitsAccepted(
            stateTable,
            judgeable.map((c) => c.commitId),
          );
    open = open.filter((chain) => !settleChain(chain, versionOf(chain), markers, fates));
    if (open.length === 0) break;
    if (Date.now() >= deadline) {
      for (const chain of open)
        for (const c of chain.commits) if (!fates.has(c.commitId)) fates.set(c.commitId, "pending");
      return fates;
    }
    wait = schedule.everyMs;
  }
  if (lookMs > 0) visibility.typicalMs = learnCommitVisibility(visibility.typicalMs, (previousLookMs + lookMs) / 2);
  return fates;
}

/** Records what the state shows of a chain; true once every commit of it has a fate. */
function settleChain(
  chain: CommitChain,
  version: number,
  markers: ReadonlySet<string>,
  fates: Map<string, CommitFate>,
): boolean {
  for (const [index, commit] of chain.commits.entries()) {
    if (fates.has(commit.commitId)) continue;
    if (commit.expectedVersion >= version) return false; // not reached yet
    if (!markers.has(commit.commitId)) {
      // Another commit took this version: this one and every one decided after it lost.
      for (const later of chain.commits.slice(index)) fates.set(later.commitId, "lost");
      return true;
    }
    // Won; read-your-writes: the state must show all of its events before it counts.
    if (version < commit.expectedVersion + commit.events.length) return false;
    fates.set(commit.commitId, "accepted");
  }
  return true;
}
