import { describe, it } from "vitest";
import { type TransferEvent, transferDecider } from "../../functions/transfers/decider.ts";
import { specFor } from "../support/decider-spec.ts";

const { given } = specFor(transferDecider);
const details = { transferId: "t", fromAccountId: "a", toAccountId: "b", amountCents: 10 };
const requested: TransferEvent = { type: "TransferRequested", data: details };
const debited: TransferEvent = { type: "TransferDebited", data: { transferId: "t" } };
const completed: TransferEvent = { type: "TransferCompleted", data: { transferId: "t" } };
const failed: TransferEvent = { type: "TransferFailed", data: { transferId: "t", reason: "no" } };

describe("Transfer", () => {
  it("is requested once", () => {
    given([])
      .when({ type: "RequestTransfer", ...details })
      .thenEmits([requested]);
    given([requested])
      .when({ type: "RequestTransfer", ...details })
      .thenRejects("transfer t already exists");
  });

  it("refuses steps for a transfer that does not exist", () => {
    given([]).when({ type: "CompleteTransfer", transferId: "t" }).thenRejects("transfer t does not exist");
  });

  it("goes REQUESTED → DEBITED → COMPLETED", () => {
    given([requested]).when({ type: "MarkTransferDebited", transferId: "t" }).thenEmits([debited]);
    given([requested, debited]).when({ type: "CompleteTransfer", transferId: "t" }).thenEmits([completed]);
    given([requested, debited, completed]).thenState({
      status: "COMPLETED",
      fromAccountId: "a",
      toAccountId: "b",
      amountCents: 10,
    });
  });

  it("takes a repeated or late step as a no-op", () => {
    given([requested, debited]).when({ type: "MarkTransferDebited", transferId: "t" }).thenEmits([]);
    given([requested, debited, completed]).when({ type: "MarkTransferDebited", transferId: "t" }).thenEmits([]);
    given([requested, debited, completed]).when({ type: "CompleteTransfer", transferId: "t" }).thenEmits([]);
    given([requested, failed]).when({ type: "FailTransfer", transferId: "t", reason: "again" }).thenEmits([]);
  });

  it("fails from REQUESTED or DEBITED, never after completion", () => {
    given([requested]).when({ type: "FailTransfer", transferId: "t", reason: "no" }).thenEmits([failed]);
    given([requested, debited]).when({ type: "FailTransfer", transferId: "t", reason: "no" }).thenEmits([failed]);
    given([requested, debited, completed])
      .when({ type: "FailTransfer", transferId: "t", reason: "no" })
      .thenRejects("transfer t already completed");
    given([requested, failed])
      .when({ type: "CompleteTransfer", transferId: "t" })
      .thenRejects("transfer t already failed");
  });
});
