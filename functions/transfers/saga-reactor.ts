/**
 * Lambda entry: the transfer saga (a reactor, law E). It listens to the transfer and account
 * events and sends the next step: debit the source → credit the target → complete; a refused
 * debit fails the transfer; a refused credit refunds the source, then fails it. Pure `react`;
 * the runtime derives each command's id from the event that caused it.
 */

import { upcasters } from "../../events/upcasters.ts";
import type { EventEnvelope } from "../../shared/events/envelope.ts";
import { type CommandRequest, reactorHandler } from "../../shared/handlers/reactor.ts";
import { contracts } from "../api/contracts.ts";

type Data = Record<string, unknown>;
const text = (data: Data, field: string) => String(data[field]);
const cents = (data: Data, field: string) => Number(data[field]);

/** The next steps that follow from one event. */
export function reactToTransferEvent(event: EventEnvelope): CommandRequest[] {
  const d = event.data;
  switch (event.type) {
    case "TransferRequested":
      return [
        {
          service: "accounts",
          command: {
            type: "DebitForTransfer",
            accountId: text(d, "fromAccountId"),
            transferId: text(d, "transferId"),
            amountCents: cents(d, "amountCents"),
            toAccountId: text(d, "toAccountId"),
          },
        },
      ];
    case "FundsDebitedForTransfer":
      return [
        { service: "transfers", command: { type: "MarkTransferDebited", transferId: text(d, "transferId") } },
        {
          service: "accounts",
          command: {
            type: "CreditForTransfer",
            accountId: text(d, "toAccountId"),
            transferId: text(d, "transferId"),
            amountCents: cents(d, "amountCents"),
            fromAccountId: text(d, "accountId"),
          },
        },
      ];
    case "FundsCreditedForTransfer":
      return [{ service: "transfers", command: { type: "CompleteTransfer", transferId: text(d, "transferId") } }];
    case "FundsRefundedForTransfer":
      return [
        {
          service: "transfers",
          command: { type: "FailTransfer", transferId: text(d, "transferId"), reason: text(d, "reason") },
        },
      ];
    case "CommandRejected":
      return reactToRejection(d);
    default:
      return [];
  }
}

function reactToRejection(d: Data): CommandRequest[] {
  const payload = (d.payload ?? {}) as Data;
  const reason = text(d, "reason");
  if (d.command === "DebitForTransfer") {
    return [
      {
        service: "transfers",
        command: { type: "FailTransfer", transferId: text(payload, "transferId"), reason: `debit refused: ${reason}` },
      },
    ];
  }
  if (d.command === "CreditForTransfer") {
    return [
      {
        service: "accounts",
        command: {
          type: "RefundTransfer",
          accountId: text(payload, "fromAccountId"),
          transferId: text(payload, "transferId"),
          amountCents: cents(payload, "amountCents"),
          reason: `credit refused: ${reason}`,
        },
      },
    ];
  }
  return [];
}

export const handler = reactorHandler({ name: "transfers.saga", react: reactToTransferEvent }, contracts, {
  upcasters,
});
