/**
 * The `accounts/balances` view, one item per account: `{ accountId, owner, balanceCents, version }`.
 */
import { upcasters } from "../../events/upcasters.ts";
import { projection } from "../../shared/parts.ts";
import { erasedText } from "../../shared/privacy/sealed.ts";
import { type AccountEvent, accountEventTypes, balanceDelta } from "./decider.ts";

export interface BalanceItem {
  readonly id: string;
  readonly accountId: string;
  readonly owner: string;
  readonly balanceCents: number;
  readonly version: number;
}

/** Folds one account event into its balance item (pure; the runtime makes it idempotent). */
export function evolveBalance(item: BalanceItem | undefined, event: AccountEvent, version: number): BalanceItem {
  const base = item ?? {
    id: event.data.accountId,
    accountId: event.data.accountId,
    owner: "",
    balanceCents: 0,
    version,
  };
  if (event.type === "AccountOpened") return { ...base, owner: event.data.owner, version };
  return { ...base, balanceCents: base.balanceCents + balanceDelta(event), version };
}

export const balances = projection<BalanceItem, AccountEvent>({
  name: "balances",
  events: [...accountEventTypes, "SubjectErased"],
  key: "accountId",
  upcasters,
  evolve: (item, event) => evolveBalance(item, event, event.aggregateversion),
  // The owner is the account holder's personal data: blanked when its subject is erased (docs/privacy.md).
  erase: (item) => ({ ...item, owner: erasedText }),
});
