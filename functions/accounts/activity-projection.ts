/**
 * The `accounts/activity` view, one item per account — how its money moved:
 * `{ accountId, deposits, withdrawals, transfersIn, transfersOut, refunds, movedCents,
 * lastMovementAt, version }`. The walkthrough's projection "added later": it is declared with
 * `warmUp: true`, so it grows from the archive (`canon projection warm-up accounts.activity`)
 * before its consumer joins the bus (docs/add-a-projection.md).
 */
import { upcasters } from "../../events/upcasters.ts";
import { type ProjectedEvent, projection } from "../../shared/parts.ts";
import { type MovementEvent, movementEventTypes } from "./decider.ts";

export interface ActivityItem {
  readonly id: string;
  readonly accountId: string;
  readonly deposits: number;
  readonly withdrawals: number;
  readonly transfersIn: number;
  readonly transfersOut: number;
  readonly refunds: number;
  /** Every cent that moved in or out. */
  readonly movedCents: number;
  readonly lastMovementAt: string;
  readonly version: number;
}

const counterOf: Record<
  MovementEvent["type"],
  keyof Pick<ActivityItem, "deposits" | "withdrawals" | "transfersIn" | "transfersOut" | "refunds">
> = {
  FundsDeposited: "deposits",
  FundsWithdrawn: "withdrawals",
  FundsCreditedForTransfer: "transfersIn",
  FundsDebitedForTransfer: "transfersOut",
  FundsRefundedForTransfer: "refunds",
};

/** Folds one movement into an account's activity (pure). */
export function evolveActivity(item: ActivityItem | undefined, event: ProjectedEvent<MovementEvent>): ActivityItem {
  const base: ActivityItem = item ?? {
    id: event.subject,
    accountId: event.subject,
    deposits: 0,
    withdrawals: 0,
    transfersIn: 0,
    transfersOut: 0,
    refunds: 0,
    movedCents: 0,
    lastMovementAt: event.time,
    version: event.aggregateversion,
  };
  const counter = counterOf[event.type];
  return {
    ...base,
    [counter]: base[counter] + 1,
    movedCents: base.movedCents + event.data.amountCents,
    lastMovementAt: event.time,
    version: event.aggregateversion,
  };
}

export const activity = projection<ActivityItem, MovementEvent>({
  name: "activity",
  events: movementEventTypes,
  key: "accountId",
  // Added "later": grown from the archive before it joins (docs/add-a-projection.md).
  warmUp: true,
  upcasters,
  evolve: evolveActivity,
});
