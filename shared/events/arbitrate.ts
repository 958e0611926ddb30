/**
 * Arbitration: Kinesis has no conditional append, so concurrent commits for the same
 * aggregate version are decided by stream order. The first commit at a version wins;
 * later ones are conflicts. This one pure function decides it for the relay, for replay
 * and for tests, so every reader agrees on the one history of each aggregate.
 *
 * A pipelined commit (one decided on state that included an earlier commit of the same handler
 * whose fate was not known yet) names that commit as `previousCommitId`: it wins only if that
 * commit is the aggregate's head, so a commit built on a loser loses too, whatever its version.
 */
import type { Commit } from "./envelope.ts";

/** What the arbiter remembers of an aggregate: its accepted version and the commit that made it. */
export interface AggregateHead {
  readonly version: number;
  readonly lastCommitId: string;
}

export type Verdict =
  /** Extends the history: the new head follows. */
  | { readonly verdict: "accepted"; readonly head: AggregateHead }
  /** The commit that made the current head, seen again (a retry or redelivery): publish again, change nothing. */
  | { readonly verdict: "duplicate" }
  /** Decided against a stale version: never reaches downstream consumers. */
  | { readonly verdict: "conflict"; readonly currentVersion: number }
  /** A rejection is recorded on the bus but is not part of the aggregate's history. */
  | { readonly verdict: "unversioned" };

/** Decides one commit against the aggregate's head (undefined: the aggregate has no history yet). */
export function arbitrate(head: AggregateHead | undefined, commit: Commit): Verdict {
  if (commit.kind === "rejection") return { verdict: "unversioned" };
  const current = head?.version ?? 0;
  if (head !== undefined && head.lastCommitId === commit.commitId) return { verdict: "duplicate" };
  if (commit.expectedVersion !== current) return { verdict: "conflict", currentVersion: current };
  if (commit.previousCommitId !== undefined && head?.lastCommitId !== commit.previousCommitId) {
    return { verdict: "conflict", currentVersion: current };
  }
  return {
    verdict: "accepted",
    head: { version: current + commit.events.length, lastCommitId: commit.commitId },
  };
}

/** Key under which the arbiter keeps an aggregate's head. */
export function aggregateKey(commit: Pick<Commit, "aggregateType" | "aggregateId">): string {
  return `${commit.aggregateType}#${commit.aggregateId}`;
}

/** Whether a verdict lets a commit's events reach readers (accepted, or a rejection on record). */
export function reachesReaders(verdict: Verdict): boolean {
  return verdict.verdict === "accepted" || verdict.verdict === "unversioned";
}

/**
 * An arbiter over a stream read in order: judges each commit against the heads it has seen and
 * remembers the new head of every accepted one. Every reader of the log (relay, replay, verify,
 * SQL, the console's tail) judges through one.
 */
export function arbiter(heads: Map<string, AggregateHead> = new Map()): {
  readonly heads: Map<string, AggregateHead>;
  judge(commit: Commit): Verdict;
} {
  return {
    heads,
    judge(commit) {
      const key = aggregateKey(commit);
      const verdict = arbitrate(heads.get(key), commit);
      if (verdict.verdict === "accepted") heads.set(key, verdict.head);
      return verdict;
    },
  };
}

/**
 * Arbitrates a run of commits in stream order from the given heads (which it does not
 * change): each commit's verdict, and the heads after the run. The relay runs each batch
 * through this; replay and tests run whole histories through it.
 */
export function arbitrateRun(
  heads: ReadonlyMap<string, AggregateHead>,
  commits: readonly Commit[],
): { verdicts: Verdict[]; heads: Map<string, AggregateHead> } {
  const run = arbiter(new Map(heads));
  return { verdicts: commits.map((commit) => run.judge(commit)), heads: run.heads };
}

/**
 * Folds commits in stream order into the accepted ones (duplicates and conflicts dropped),
 * as every reader of the log must: the relay, a replay from the archive, a test's oracle.
 */
export function acceptedHistory(commits: readonly Commit[]): Commit[] {
  const run = arbiter();
  return commits.filter((commit) => reachesReaders(run.judge(commit)));
}
