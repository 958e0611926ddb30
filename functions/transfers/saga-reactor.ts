/**
 * The transfer saga (a reactor, law E). It listens to the transfer and account
 * events and sends the next step: debit the source → credit the target → complete; a refused
 * debit fails the transfer; a refused credit refunds the source, then fails it. Pure `react`;
 * the runtime derives each command's id from the event that caused it.
 */

import { upcasters } from "../../events/upcasters.ts";
import { type CommandRejectedOf, eventTypes } from "../../shared/domain/decider.ts";
import { type CommandRequest, type ProjectedEvent, reactor } from "../../shared/parts.ts";
import type { AccountCommand, AccountEvent } from "../accounts/decider.ts";
import type { TransferEvent } from "./decider.ts";

/** What the saga listens to (its subscription is checked against it). */
export type SagaEvent =
  | Extract<TransferEvent, { type: "TransferRequested" }>
  | Extract<AccountEvent, { type: "FundsDebitedForTransfer" | "FundsCreditedForTransfer" | "FundsRefundedForTransfer" }>
  | CommandRejectedOf<AccountCommand>;

/** The next steps that follow from one event. */
export function reactToTransferEvent(event: ProjectedEvent<SagaEvent>): CommandRequest[] {
  switch (event.type) {
    case "TransferRequested": {
      const { transferId, fromAccountId, toAccountId, amountCents } = event.data;
      return [
        {
          service: "accounts",
          command: { type: "DebitForTransfer", accountId: fromAccountId, transferId, amountCents, toAccountId },
        },
      ];
    }
    case "FundsDebitedForTransfer": {
      const { accountId, transferId, amountCents, toAccountId } = event.data;
      return [
        { service: "transfers", command: { type: "MarkTransferDebited", transferId } },
        {
          service: "accounts",
          command: {
            type: "CreditForTransfer",
            accountId: toAccountId,
            transferId,
            amountCents,
            fromAccountId: accountId,
          },
        },
      ];
    }
    case "FundsCreditedForTransfer":
      return [{ service: "transfers", command: { type: "CompleteTransfer", transferId: event.data.transferId } }];
    case "FundsRefundedForTransfer": {
      const { transferId, reason } = event.data;
      return [{ service: "transfers", command: { type: "FailTransfer", transferId, reason } }];
    }
    case "CommandRejected":
      return reactToRejection(event);
    default:
      return [];
  }
}

function reactToRejection({ data }: CommandRejectedOf<AccountCommand>): CommandRequest[] {
  switch (data.command) {
    case "DebitForTransfer": {
      const reason = `debit refused: ${data.reason}`;
      return [{ service: "transfers", command: { type: "FailTransfer", transferId: data.payload.transferId, reason } }];
    }
    case "CreditForTransfer": {
      const { fromAccountId, transferId, amountCents } = data.payload;
      const reason = `credit refused: ${data.reason}`;
      return [
        {
          service: "accounts",
          command: { type: "RefundTransfer", accountId: fromAccountId, transferId, amountCents, reason },
        },
      ];
    }
    default:
      return [];
  }
}

/** The saga: the runtime derives each command's id from the event that caused it. */
export const saga = reactor<SagaEvent>({
  name: "saga",
  events: eventTypes<SagaEvent>({
    TransferRequested: true,
    FundsDebitedForTransfer: true,
    FundsCreditedForTransfer: true,
    FundsRefundedForTransfer: true,
    CommandRejected: true,
  }),
  sendsTo: ["accounts", "transfers"],
  upcasters,
  react: reactToTransferEvent,
});
