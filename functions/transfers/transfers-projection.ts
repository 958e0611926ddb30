/**
 * The `transfers/transfers` view, one item per transfer:
 * `{ transferId, status, fromAccountId, toAccountId, amountCents, reason?, version }`.
 */
import { upcasters } from "../../events/upcasters.ts";
import { projection } from "../../shared/parts.ts";
import { type TransferEvent, type TransferStatus, transferEventTypes } from "./decider.ts";

export interface TransferItem {
  readonly id: string;
  readonly transferId: string;
  readonly status: TransferStatus;
  readonly fromAccountId: string;
  readonly toAccountId: string;
  readonly amountCents: number;
  readonly reason?: string;
  readonly version: number;
}

/** Folds one transfer event into its view item (pure). */
export function evolveTransfer(item: TransferItem | undefined, event: TransferEvent, version: number): TransferItem {
  if (event.type === "TransferRequested") {
    return { id: event.data.transferId, ...event.data, status: "REQUESTED", version };
  }
  const base = item ?? {
    id: event.data.transferId,
    transferId: event.data.transferId,
    status: "REQUESTED" as const,
    fromAccountId: "",
    toAccountId: "",
    amountCents: 0,
    version,
  };
  switch (event.type) {
    case "TransferDebited":
      return { ...base, status: "DEBITED", version };
    case "TransferCompleted":
      return { ...base, status: "COMPLETED", version };
    case "TransferFailed":
      return { ...base, status: "FAILED", reason: event.data.reason, version };
  }
}

export const transfers = projection<TransferItem, TransferEvent>({
  name: "transfers",
  events: transferEventTypes,
  key: "transferId",
  upcasters,
  evolve: (item, event) => evolveTransfer(item, event, event.aggregateversion),
});
