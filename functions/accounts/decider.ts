/**
 * The Account aggregate: open it, deposit into it, withdraw from it (never below zero).
 * Pure functions only; the framework brings state, time and the bus.
 */

import type { CommandOf } from "../../shared/domain/commands.ts";
import type { Decider, Decision } from "../../shared/domain/decider.ts";
import { reject } from "../../shared/domain/decider.ts";
import type { NewEvent } from "../../shared/events/envelope.ts";
import type { accountCommands } from "./commands.ts";

export type AccountCommand = CommandOf<typeof accountCommands>;

export type AccountState =
  | { readonly status: "none" }
  | { readonly status: "open"; readonly owner: string; readonly balanceCents: number };

export type AccountEvent =
  | { type: "AccountOpened"; data: { accountId: string; owner: string } }
  | { type: "FundsDeposited"; data: { accountId: string; amountCents: number } }
  | { type: "FundsWithdrawn"; data: { accountId: string; amountCents: number } };

function openAccount(command: Extract<AccountCommand, { type: "OpenAccount" }>, state: AccountState): Decision {
  if (state.status !== "none") return reject(`account ${command.accountId} is already open`);
  return [{ type: "AccountOpened", data: { accountId: command.accountId, owner: command.owner } }];
}

function deposit(command: Extract<AccountCommand, { type: "Deposit" }>, state: AccountState): Decision {
  if (state.status !== "open") return reject(`account ${command.accountId} does not exist`);
  if (state.balanceCents + command.amountCents > Number.MAX_SAFE_INTEGER) return reject("balance would overflow");
  return [{ type: "FundsDeposited", data: { accountId: command.accountId, amountCents: command.amountCents } }];
}

function withdraw(command: Extract<AccountCommand, { type: "Withdraw" }>, state: AccountState): Decision {
  if (state.status !== "open") return reject(`account ${command.accountId} does not exist`);
  if (command.amountCents > state.balanceCents) {
    return reject(`insufficient funds: balance ${state.balanceCents}, requested ${command.amountCents}`);
  }
  return [{ type: "FundsWithdrawn", data: { accountId: command.accountId, amountCents: command.amountCents } }];
}

function evolve(state: AccountState, event: NewEvent): AccountState {
  const e = event as AccountEvent;
  switch (e.type) {
    case "AccountOpened":
      return { status: "open", owner: e.data.owner, balanceCents: 0 };
    case "FundsDeposited":
      return state.status === "open" ? { ...state, balanceCents: state.balanceCents + e.data.amountCents } : state;
    case "FundsWithdrawn":
      return state.status === "open" ? { ...state, balanceCents: state.balanceCents - e.data.amountCents } : state;
    default:
      return state;
  }
}

export const accountDecider: Decider<AccountCommand, AccountState> = {
  initialState: { status: "none" },
  decide(command, state) {
    switch (command.type) {
      case "OpenAccount":
        return openAccount(command, state);
      case "Deposit":
        return deposit(command, state);
      case "Withdraw":
        return withdraw(command, state);
      default: {
        const unknown: never = command;
        throw new Error(`unhandled command ${JSON.stringify(unknown)}`);
      }
    }
  },
  evolve,
};
