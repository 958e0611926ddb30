/** The transfer saga's reactions, and their ids derived from the cause (law E). */
import { describe, expect, it } from "vitest";
import { app } from "../../functions/app.ts";
import { reactToTransferEvent } from "../../functions/transfers/saga-reactor.ts";
import { contractsOf } from "../../shared/domain/commands.ts";
import { buildCommit, type EventEnvelope } from "../../shared/events/envelope.ts";
import { commandsFor, InvalidReactionError, type ReactorDefinition } from "../../shared/handlers/reactor.ts";

function event(type: string, data: Record<string, unknown>, commandId = "cause-1"): EventEnvelope {
  const commit = buildCommit(
    "events",
    {
      commandId,
      attempt: 1,
      service: "x",
      bus: "core",
      aggregateType: "X",
      aggregateId: "agg",
      expectedVersion: 0,
      correlationId: "corr",
      causationId: commandId,
      now: new Date("2026-01-01T00:00:00Z"),
    },
    [{ type, data }],
  );
  return commit.events[0] as EventEnvelope;
}

// As the runtime calls it: with any event from its queue.
const contracts = contractsOf(app);
const saga: ReactorDefinition = { name: "transfers.saga", react: reactToTransferEvent };
const react = (e: EventEnvelope) => saga.react(e);
const requested = event("TransferRequested", { transferId: "t", fromAccountId: "a", toAccountId: "b", amountCents: 5 });

describe("the transfer saga", () => {
  it("debits the source when a transfer is requested", () => {
    expect(react(requested)).toEqual([
      {
        service: "accounts",
        command: { type: "DebitForTransfer", accountId: "a", transferId: "t", amountCents: 5, toAccountId: "b" },
      },
    ]);
  });

  it("marks the transfer debited and credits the target after the debit", () => {
    const debited = event("FundsDebitedForTransfer", {
      accountId: "a",
      transferId: "t",
      amountCents: 5,
      toAccountId: "b",
    });
    expect(react(debited).map((r) => r.command.type)).toEqual(["MarkTransferDebited", "CreditForTransfer"]);
  });

  it("fails on a refused debit and refunds on a refused credit", () => {
    const refusedDebit = event("CommandRejected", {
      command: "DebitForTransfer",
      reason: "insufficient funds",
      payload: { type: "DebitForTransfer", accountId: "a", transferId: "t", amountCents: 5, toAccountId: "b" },
    });
    expect(react(refusedDebit)).toEqual([
      {
        service: "transfers",
        command: { type: "FailTransfer", transferId: "t", reason: "debit refused: insufficient funds" },
      },
    ]);
    const refusedCredit = event("CommandRejected", {
      command: "CreditForTransfer",
      reason: "account b does not exist",
      payload: { type: "CreditForTransfer", accountId: "b", transferId: "t", amountCents: 5, fromAccountId: "a" },
    });
    expect(react(refusedCredit)[0]?.command).toEqual({
      type: "RefundTransfer",
      accountId: "a",
      transferId: "t",
      amountCents: 5,
      reason: "credit refused: account b does not exist",
    });
  });

  it("ignores what it does not drive", () => {
    expect(react(event("CommandRejected", { command: "Deposit", reason: "x", payload: {} }))).toEqual([]);
    expect(react(event("TransferCompleted", { transferId: "t" }))).toEqual([]);
  });

  it("derives command ids from the cause: a redelivered event sends the same commands", () => {
    const first = commandsFor(saga, contracts, requested);
    const again = commandsFor(saga, contracts, { ...requested });
    expect(again).toEqual(first);
    expect(first[0]).toMatchObject({
      service: "accounts",
      aggregateId: "a",
      causationId: requested.id,
      correlationId: "corr",
    });
    const other = commandsFor(saga, contracts, event("TransferRequested", requested.data, "cause-2"));
    expect(other[0]?.commandId).not.toBe(first[0]?.commandId);
  });

  it("refuses to send a command its target's contract rejects", () => {
    const broken = event("TransferRequested", {
      transferId: "t",
      fromAccountId: "a",
      toAccountId: "b",
      amountCents: -1,
    });
    expect(() => commandsFor(saga, contracts, broken)).toThrow(InvalidReactionError);
  });
});
