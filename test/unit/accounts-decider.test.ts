import { describe, it } from "vitest";
import { type AccountEvent, accountDecider } from "../../functions/accounts/decider.ts";
import { specFor } from "../support/decider-spec.ts";

const { given } = specFor(accountDecider);
const opened: AccountEvent = { type: "AccountOpened", data: { accountId: "a", owner: "Ada" } };
const deposited = (amountCents: number): AccountEvent => ({
  type: "FundsDeposited",
  data: { accountId: "a", amountCents },
});

describe("Account", () => {
  it("opens a new account", () => {
    given([]).when({ type: "OpenAccount", accountId: "a", owner: "Ada" }).thenEmits([opened]);
  });

  it("refuses to open an account twice", () => {
    given([opened])
      .when({ type: "OpenAccount", accountId: "a", owner: "Ada" })
      .thenRejects("account a is already open");
  });

  it("deposits into an open account", () => {
    given([opened])
      .when({ type: "Deposit", accountId: "a", amountCents: 5 })
      .thenEmits([deposited(5)]);
  });

  it("refuses deposits and withdrawals on a missing account", () => {
    given([]).when({ type: "Deposit", accountId: "a", amountCents: 5 }).thenRejects("account a does not exist");
    given([]).when({ type: "Withdraw", accountId: "a", amountCents: 5 }).thenRejects("account a does not exist");
  });

  it("withdraws up to the balance, never beyond", () => {
    given([opened, deposited(100)])
      .when({ type: "Withdraw", accountId: "a", amountCents: 100 })
      .thenEmits([{ type: "FundsWithdrawn", data: { accountId: "a", amountCents: 100 } }]);
    given([opened, deposited(100)])
      .when({ type: "Withdraw", accountId: "a", amountCents: 101 })
      .thenRejects(/insufficient funds: balance 100, requested 101/);
  });

  it("refuses a deposit that would overflow the balance", () => {
    given([opened, deposited(Number.MAX_SAFE_INTEGER)])
      .when({ type: "Deposit", accountId: "a", amountCents: 1 })
      .thenRejects("balance would overflow");
  });

  it("debits for a transfer only what the balance covers", () => {
    given([opened, deposited(50)])
      .when({ type: "DebitForTransfer", accountId: "a", transferId: "t", amountCents: 50, toAccountId: "b" })
      .thenEmits([
        {
          type: "FundsDebitedForTransfer",
          data: { accountId: "a", transferId: "t", amountCents: 50, toAccountId: "b" },
        },
      ]);
    given([opened, deposited(50)])
      .when({ type: "DebitForTransfer", accountId: "a", transferId: "t", amountCents: 51, toAccountId: "b" })
      .thenRejects(/insufficient funds/);
  });

  it("credits and refunds an open account, and refuses a missing one", () => {
    given([opened])
      .when({ type: "CreditForTransfer", accountId: "a", transferId: "t", amountCents: 7, fromAccountId: "b" })
      .thenEmits([
        {
          type: "FundsCreditedForTransfer",
          data: { accountId: "a", transferId: "t", amountCents: 7, fromAccountId: "b" },
        },
      ]);
    given([])
      .when({ type: "CreditForTransfer", accountId: "a", transferId: "t", amountCents: 7, fromAccountId: "b" })
      .thenRejects("account a does not exist");
    given([opened])
      .when({ type: "RefundTransfer", accountId: "a", transferId: "t", amountCents: 7, reason: "r" })
      .thenEmits([
        { type: "FundsRefundedForTransfer", data: { accountId: "a", transferId: "t", amountCents: 7, reason: "r" } },
      ]);
  });

  it("folds every movement into the balance", () => {
    given([
      opened,
      deposited(100),
      { type: "FundsWithdrawn", data: { accountId: "a", amountCents: 30 } },
      { type: "FundsDebitedForTransfer", data: { accountId: "a", transferId: "t", amountCents: 20, toAccountId: "b" } },
      { type: "FundsRefundedForTransfer", data: { accountId: "a", transferId: "t", amountCents: 20, reason: "r" } },
      {
        type: "FundsCreditedForTransfer",
        data: { accountId: "a", transferId: "u", amountCents: 5, fromAccountId: "b" },
      },
    ]).thenState({ status: "open", owner: "Ada", balanceCents: 75 });
  });
});
