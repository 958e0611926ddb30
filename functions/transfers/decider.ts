/**
 * The Transfer aggregate: a request to move money between two accounts, and where it stands:
 * REQUESTED → DEBITED → COMPLETED, or FAILED (debit refused, or credit refused and refunded).
 * The saga (saga-reactor.ts) drives it; steps that arrive twice or late change nothing.
 */
import { upcasters } from "../../events/upcasters.ts";
import type { Decision } from "../../shared/domain/decider.ts";
import { eventTypes, reject } from "../../shared/domain/decider.ts";
import type { CommandsOf, EventsOf } from "../../shared/domain/proto-contract.ts";
import type { DeciderPart } from "../../shared/parts.ts";
import type { transferContract } from "./contract.ts";

/** The commands: the input of every rpc in transfers.proto. */
export type TransferCommand = CommandsOf<typeof transferContract>;
/** The events: every other message of transfers.proto. */
export type TransferEvent = EventsOf<typeof transferContract>;

export type TransferStatus = "REQUESTED" | "DEBITED" | "COMPLETED" | "FAILED";

export type TransferState =
  | { readonly status: "NONE" }
  | {
      readonly status: TransferStatus;
      readonly fromAccountId: string;
      readonly toAccountId: string;
      readonly amountCents: number;
    };

/** Every event type of the Transfer aggregate. */
export const transferEventTypes = eventTypes<TransferEvent>({
  TransferRequested: true,
  TransferDebited: true,
  TransferCompleted: true,
  TransferFailed: true,
});

const finished = (state: TransferState) => state.status === "COMPLETED" || state.status === "FAILED";

function decide(command: TransferCommand, state: TransferState): Decision<TransferEvent> {
  const transferId = command.transferId;
  if (command.type === "RequestTransfer") {
    if (state.status !== "NONE") return reject(`transfer ${transferId} already exists`);
    const { fromAccountId, toAccountId, amountCents } = command;
    return [{ type: "TransferRequested", data: { transferId, fromAccountId, toAccountId, amountCents } }];
  }
  if (state.status === "NONE") return reject(`transfer ${transferId} does not exist`);
  switch (command.type) {
    case "MarkTransferDebited":
      return state.status === "REQUESTED" ? [{ type: "TransferDebited", data: { transferId } }] : [];
    case "CompleteTransfer":
      if (state.status === "FAILED") return reject(`transfer ${transferId} already failed`);
      return finished(state) ? [] : [{ type: "TransferCompleted", data: { transferId } }];
    case "FailTransfer":
      if (state.status === "COMPLETED") return reject(`transfer ${transferId} already completed`);
      return finished(state) ? [] : [{ type: "TransferFailed", data: { transferId, reason: command.reason } }];
    default: {
      const unknown: never = command;
      throw new Error(`unhandled command ${JSON.stringify(unknown)}`);
    }
  }
}

function evolve(state: TransferState, event: TransferEvent): TransferState {
  if (event.type === "TransferRequested") {
    const { fromAccountId, toAccountId, amountCents } = event.data;
    return { status: "REQUESTED", fromAccountId, toAccountId, amountCents };
  }
  if (state.status === "NONE") return state;
  switch (event.type) {
    case "TransferDebited":
      return { ...state, status: "DEBITED" };
    case "TransferCompleted":
      return { ...state, status: "COMPLETED" };
    case "TransferFailed":
      return { ...state, status: "FAILED" };
  }
}

export const transferDecider: DeciderPart<TransferCommand, TransferEvent, TransferState> = {
  initialState: { status: "NONE" },
  decide,
  evolve,
  upcasters,
};
