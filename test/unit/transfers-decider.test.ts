import { describe, it } from "vitest";
import { transferDecider } from "../../functions/transfers/decider.ts";
import { specFor } from "../support/decider-spec.ts";

const { given } = specFor(transferDecider);
const details = { transferId: "t", fromAccountId: "a", toAccountId: "b", amountCents: 10 };
const requested = { type: "TransferRequested", data: details };
const debited = { type: "TransferDebited", data: { transferId: "t" } };
const completed = { type: "TransferCompleted", data: { transferId: "t" } };
const failed = { type: "TransferFailed", data: { transferId: "t", reason: "no" } };

describe("Transfer", () => {
  it("is requested once", () => {
    given([])
      .when({ type: "RequestTransfer", ...details })
      .then([requested]);
    given([requested])
      .when({ type: "RequestTransfer", ...details })
      .thenRejected("transfer t already exists");
  });

  it("refuses steps for a transfer that does not exist", () => {
    given([]).when({ type: "CompleteTransfer", transferId: "t" }).thenRejected("transfer t does not exist");
  });

  it("goes REQUESTED → DEBITED → COMPLETED", () => {
    given([requested]).when({ type: "MarkTransferDebited", transferId: "t" }).then([debited]);
    given([requested, debited]).when({ type: "CompleteTransfer", transferId: "t" }).then([completed]);
    given([requested, debited, completed]).thenState({
      status: "COMPLETED",
      fromAccountId: "a",
      toAccountId: "b",
      amountCents: 10,
    });
  });

  it("takes a repeated or late step as a no-op", () => {
    given([requested, debited]).when({ type: "MarkTransferDebited", transferId: "t" }).then([]);
    given([requested, debited, completed]).when({ type: "MarkTransferDebited", transferId: "t" }).then([]);
    given([requested, debited, completed]).when({ type: "CompleteTransfer", transferId: "t" }).then([]);
    given([requested, failed]).when({ type: "FailTransfer", transferId: "t", reason: "again" }).then([]);
  });

  it("fails from REQUESTED or DEBITED, never after completion", () => {
    given([requested]).when({ type: "FailTransfer", transferId: "t", reason: "no" }).then([failed]);
    given([requested, debited]).when({ type: "FailTransfer", transferId: "t", reason: "no" }).then([failed]);
    given([requested, debited, completed])
      .when({ type: "FailTransfer", transferId: "t", reason: "no" })
      .thenRejected("transfer t already completed");
    given([requested, failed])
      .when({ type: "CompleteTransfer", transferId: "t" })
      .thenRejected("transfer t already failed");
  });
});
