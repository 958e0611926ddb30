/**
 * The `accounts/daily-totals` view, one item per UTC day of the bank's cash in and
 * out: `{ date, depositsCents, withdrawalsCents, events }` (transfers move money inside the bank
 * and are not counted). Fed by every account, so it is a counter projection: exact under
 * duplicates and replays because each day remembers the event ids it counted (see
 * shared/handlers/counters.ts for the bound and the shards).
 */
import { upcasters } from "../../events/upcasters.ts";
import { eventTypes, isEventOf } from "../../shared/domain/decider.ts";
import type { EventEnvelope } from "../../shared/events/envelope.ts";
import { counters } from "../../shared/parts.ts";
import type { AccountEvent } from "./decider.ts";

export interface DailyTotalsItem {
  readonly date: string;
  readonly depositsCents: number;
  readonly withdrawalsCents: number;
  readonly events: number;
}

/** The events the view counts: cash in and out of the bank. */
type CashEvent = Extract<AccountEvent, { type: "FundsDeposited" | "FundsWithdrawn" }>;
export const dailyTotalsEventTypes = eventTypes<CashEvent>({ FundsDeposited: true, FundsWithdrawn: true });

/** Totals per UTC day, fed by every account: exact under duplicates (a counter view). */
export const dailyTotals = counters({
  name: "daily-totals",
  events: dailyTotalsEventTypes,
  key: "date",
  upcasters,
  counters: {
    key: (event: EventEnvelope) => (event.time.length >= 10 ? event.time.slice(0, 10) : undefined),
    initial: (date: string) => ({ date, depositsCents: 0, withdrawalsCents: 0 }),
    add(event: EventEnvelope): Record<string, number> {
      if (!isEventOf<CashEvent>(event, dailyTotalsEventTypes)) return {};
      const amount = event.data.amountCents;
      return event.type === "FundsDeposited" ? { depositsCents: amount } : { withdrawalsCents: amount };
    },
  },
});
