/**
 * Lambda entry: the `accounts/daily-totals` view, one item per UTC day of the bank's cash in and
 * out: `{ date, depositsCents, withdrawalsCents, events }` (transfers move money inside the bank
 * and are not counted). Fed by every account, so it is a counter projection: exact under
 * duplicates and replays because each day remembers the event ids it counted (see
 * shared/handlers/counters.ts for the bound and the shards).
 */
import { upcasters } from "../../events/upcasters.ts";
import type { EventEnvelope } from "../../shared/events/envelope.ts";
import { type CounterProjection, counterProjection } from "../../shared/handlers/counters.ts";
import { projectionHandler } from "../../shared/handlers/projection.ts";

export interface DailyTotalsItem {
  readonly date: string;
  readonly depositsCents: number;
  readonly withdrawalsCents: number;
  readonly events: number;
}

/** The event types the view counts. */
export const dailyTotalsEventTypes = ["FundsDeposited", "FundsWithdrawn"] as const;

/** The view's definition; `shardBytes` is open for tests of the shard roll-over. */
export function dailyTotals(options: Pick<CounterProjection, "shardBytes"> = {}): CounterProjection {
  return {
    name: "accounts.daily-totals",
    events: dailyTotalsEventTypes,
    upcasters,
    ...options,
    key: (event: EventEnvelope) => (event.time.length >= 10 ? event.time.slice(0, 10) : undefined),
    initial: (date: string) => ({ date, depositsCents: 0, withdrawalsCents: 0 }),
    add(event: EventEnvelope): Record<string, number> {
      const amount = Number(event.data.amountCents);
      switch (event.type) {
        case "FundsDeposited":
          return { depositsCents: amount };
        case "FundsWithdrawn":
          return { withdrawalsCents: amount };
        default:
          return {};
      }
    },
  };
}

export const handler = projectionHandler(counterProjection(dailyTotals()));
