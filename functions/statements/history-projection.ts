/**
 * The `statements/history` view, one item per account, listing its accepted
 * money movements with the balance after each:
 * `{ accountId, entries: [{ eventId, type, amountCents, balanceAfterCents, at }], version }`.
 * `amountCents` is signed (credits positive, debits negative), so the entries sum to the balance.
 * Bound: one item holds about 2,000 entries (DynamoDB's 400 KB item limit).
 */

import { upcasters } from "../../events/upcasters.ts";
import { type ProjectedEvent, projection } from "../../shared/parts.ts";
import { balanceDelta, type MovementEvent, movementEventTypes } from "../accounts/decider.ts";

export interface StatementEntry {
  readonly eventId: string;
  readonly type: MovementEvent["type"];
  readonly amountCents: number;
  readonly balanceAfterCents: number;
  readonly at: string;
}

export interface StatementItem {
  readonly id: string;
  readonly accountId: string;
  readonly entries: readonly StatementEntry[];
  readonly version: number;
}

/** Appends one movement to an account's statement (pure). */
export function evolveStatement(item: StatementItem | undefined, event: ProjectedEvent<MovementEvent>): StatementItem {
  const entries = item?.entries ?? [];
  const amountCents = balanceDelta(event);
  const balanceBefore = entries.at(-1)?.balanceAfterCents ?? 0;
  return {
    id: event.subject,
    accountId: event.subject,
    entries: [
      ...entries,
      {
        eventId: event.id,
        type: event.type,
        amountCents,
        balanceAfterCents: balanceBefore + amountCents,
        at: event.time,
      },
    ],
    version: event.aggregateversion,
  };
}

export const history = projection<StatementItem, MovementEvent>({
  name: "history",
  // The money-moving account events a statement lists.
  events: movementEventTypes,
  key: "accountId",
  upcasters,
  evolve: evolveStatement,
});
