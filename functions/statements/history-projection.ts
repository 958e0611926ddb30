/**
 * Lambda entry: the `statements/history` view, one item per account, listing its accepted
 * money movements with the balance after each:
 * `{ accountId, entries: [{ eventId, type, amountCents, balanceAfterCents, at }], version }`.
 * `amountCents` is signed (credits positive, debits negative), so the entries sum to the balance.
 * Bound: one item holds about 2,000 entries (DynamoDB's 400 KB item limit).
 */

import { upcasters } from "../../events/upcasters.ts";
import type { EventEnvelope } from "../../shared/events/envelope.ts";
import { aggregateProjection, projectionHandler } from "../../shared/handlers/projection.ts";
import { type AccountEvent, balanceDelta } from "../accounts/decider.ts";
import { statementEventTypes } from "./service.ts";

export interface StatementEntry {
  readonly eventId: string;
  readonly type: string;
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
export function evolveStatement(item: StatementItem | undefined, event: EventEnvelope): StatementItem {
  const entries = item?.entries ?? [];
  const amountCents = balanceDelta({ type: event.type, data: event.data } as AccountEvent);
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

export const handler = projectionHandler(
  aggregateProjection<StatementItem>({
    name: "statements.history",
    events: statementEventTypes,
    upcasters,
    evolve: evolveStatement,
  }),
);
