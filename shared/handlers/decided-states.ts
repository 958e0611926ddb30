/**
 * The states this handler instance's own accepted commits made. The command handler settles a
 * commit as soon as the arbiter's head names it (commit-wait.ts), a hop before its state
 * projection shows it; the next command for that aggregate is decided on the state remembered
 * here when it is ahead of the state table, instead of on a stale one whose commit would lose.
 *
 * Only a commit known to have won is remembered, with the state its decision evolved to (the
 * same state pipelined commits are decided on), so a remembered state is always a prefix of the
 * aggregate's one accepted history. If another writer has moved the aggregate on since, a
 * decision on it loses arbitration like one on any stale read, and is decided again; the entry is
 * then forgotten. Bounded: the least recently used aggregates are dropped first.
 */
import type { StateItem } from "./aggregate-state.ts";

/** Aggregates remembered per instance (a few MiB at most for small states). */
const maxAggregates = 10_000;

export class DecidedStates<State> {
  readonly #items = new Map<string, StateItem<State>>();
  readonly #max: number;

  constructor(max = maxAggregates) {
    this.#max = max;
  }

  /** Remembers the state an accepted commit made (a later version only: never steps back). */
  remember(aggregateId: string, item: StateItem<State>): void {
    const known = this.#items.get(aggregateId);
    if (known !== undefined && known.version > item.version) return;
    this.#items.delete(aggregateId);
    this.#items.set(aggregateId, item);
    if (this.#items.size > this.#max) this.#items.delete(this.#items.keys().next().value as string);
  }

  /** Forgets an aggregate whose history moved on without this instance (its commit lost). */
  forget(aggregateId: string): void {
    this.#items.delete(aggregateId);
  }

  /** The fresher of the table's state and the remembered one, per aggregate (the table's when equal). */
  freshest(read: ReadonlyMap<string, StateItem<State>>): Map<string, StateItem<State>> {
    const result = new Map(read);
    for (const [id, item] of read) {
      const known = this.#items.get(id);
      if (known === undefined) continue;
      if (known.version > item.version) {
        result.set(id, known);
        // Recently used: kept longest.
        this.#items.delete(id);
        this.#items.set(id, known);
      } else {
        // The table has caught up (or passed it): it is the one to read from now on.
        this.#items.delete(id);
      }
    }
    return result;
  }

  get size(): number {
    return this.#items.size;
  }
}
