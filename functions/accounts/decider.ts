/**
 * The Account aggregate: open it, deposit into it, withdraw from it (never below zero), and
 * the legs of a transfer: debit the source, credit the target, refund the source. Its commands
 * and events are the messages of events/proto/canon/bank/accounts/v1/accounts.proto.
 * Pure functions only; the framework brings state, time and the bus.
 */
import { upcasters } from "../../events/upcasters.ts";
import type { Decision } from "../../shared/domain/decider.ts";
import { eventTypes, reject } from "../../shared/domain/decider.ts";
import type { CommandsOf, EventsOf } from "../../shared/domain/proto-contract.ts";
import type { DeciderPart } from "../../shared/parts.ts";
import type { accountContract } from "./contract.ts";

/** The commands: the input of every rpc in accounts.proto. */
export type AccountCommand = CommandsOf<typeof accountContract>;
/** The events: every other message of accounts.proto. */
export type AccountEvent = EventsOf<typeof accountContract>;
type Command<T extends AccountCommand["type"]> = Extract<AccountCommand, { type: T }>;
type Event<T extends AccountEvent["type"]> = Extract<AccountEvent, { type: T }>;

export type AccountState =
  | { readonly status: "none" }
  | { readonly status: "open"; readonly owner: string; readonly balanceCents: number };

/** Every event type of the Account aggregate (its state projection subscribes to all of them). */
export const accountEventTypes = eventTypes<AccountEvent>({
  AccountOpened: true,
  FundsDeposited: true,
  FundsWithdrawn: true,
  FundsDebitedForTransfer: true,
  FundsCreditedForTransfer: true,
  FundsRefundedForTransfer: true,
});

/** The events that move an account's money (all but AccountOpened). */
export type MovementEvent = Exclude<AccountEvent, Event<"AccountOpened">>;

/** Every money-moving event type (the statements and the activity view subscribe to them). */
export const movementEventTypes = eventTypes<MovementEvent>({
  FundsDeposited: true,
  FundsWithdrawn: true,
  FundsDebitedForTransfer: true,
  FundsCreditedForTransfer: true,
  FundsRefundedForTransfer: true,
});

/** How an event moves an account's balance, in cents (0 for events that move no money). */
export function balanceDelta(event: AccountEvent): number {
  switch (event.type) {
    case "FundsDeposited":
    case "FundsCreditedForTransfer":
    case "FundsRefundedForTransfer":
      return event.data.amountCents;
    case "FundsWithdrawn":
    case "FundsDebitedForTransfer":
      return -event.data.amountCents;
    case "AccountOpened":
      return 0;
  }
}

const missing = (accountId: string) => reject(`account ${accountId} does not exist`);

function openAccount(command: Command<"OpenAccount">, state: AccountState): Decision<AccountEvent> {
  if (state.status !== "none") return reject(`account ${command.accountId} is already open`);
  return [{ type: "AccountOpened", data: { accountId: command.accountId, owner: command.owner } }];
}

function credit(
  state: AccountState,
  accountId: string,
  amountCents: number,
  event: AccountEvent,
): Decision<AccountEvent> {
  if (state.status !== "open") return missing(accountId);
  if (state.balanceCents + amountCents > Number.MAX_SAFE_INTEGER) return reject("balance would overflow");
  return [event];
}

function debit(
  state: AccountState,
  accountId: string,
  amountCents: number,
  event: AccountEvent,
): Decision<AccountEvent> {
  if (state.status !== "open") return missing(accountId);
  if (amountCents > state.balanceCents) {
    return reject(`insufficient funds: balance ${state.balanceCents}, requested ${amountCents}`);
  }
  return [event];
}

function decide(command: AccountCommand, state: AccountState): Decision<AccountEvent> {
  switch (command.type) {
    case "OpenAccount":
      return openAccount(command, state);
    case "Deposit": {
      const { accountId, amountCents } = command;
      return credit(state, accountId, amountCents, { type: "FundsDeposited", data: { accountId, amountCents } });
    }
    case "Withdraw": {
      const { accountId, amountCents } = command;
      return debit(state, accountId, amountCents, { type: "FundsWithdrawn", data: { accountId, amountCents } });
    }
    case "DebitForTransfer": {
      const { accountId, transferId, amountCents, toAccountId } = command;
      const data = { accountId, transferId, amountCents, toAccountId };
      return debit(state, accountId, amountCents, { type: "FundsDebitedForTransfer", data });
    }
    case "CreditForTransfer": {
      const { accountId, transferId, amountCents, fromAccountId } = command;
      const data = { accountId, transferId, amountCents, fromAccountId };
      return credit(state, accountId, amountCents, { type: "FundsCreditedForTransfer", data });
    }
    case "RefundTransfer": {
      const { accountId, transferId, amountCents, reason } = command;
      const data = { accountId, transferId, amountCents, reason };
      return credit(state, accountId, amountCents, { type: "FundsRefundedForTransfer", data });
    }
    default: {
      const unknown: never = command;
      throw new Error(`unhandled command ${JSON.stringify(unknown)}`);
    }
  }
}

function evolve(state: AccountState, event: AccountEvent): AccountState {
  if (event.type === "AccountOpened") return { status: "open", owner: event.data.owner, balanceCents: 0 };
  if (state.status !== "open") return state;
  return { ...state, balanceCents: state.balanceCents + balanceDelta(event) };
}

export const accountDecider: DeciderPart<AccountCommand, AccountEvent, AccountState> = {
  initialState: { status: "none" },
  decide,
  evolve,
  upcasters,
};
