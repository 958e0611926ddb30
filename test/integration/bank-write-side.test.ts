/**
 * The write side over the wire: one history per aggregate under concurrency, honest outcomes,
 * and the transfer saga conserving money, on the embedded local cloud.
 */
import { GetQueueAttributesCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqsClient } from "../../shared/aws/clients.ts";
import { removeDataDir, startSystem, type TestSystem, view, waitFor } from "../support/system.ts";

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

interface Balance {
  balanceCents: number;
  version: number;
}
interface Transfer {
  status: string;
  reason?: string;
}
interface Statement {
  entries: { eventId: string; type: string; amountCents: number; balanceAfterCents: number }[];
  version: number;
}

async function openWith(accountId: string, cents: number): Promise<void> {
  expect((await system.command("accounts", "OpenAccount", { accountId, owner: accountId })).status).toBe("accepted");
  if (cents > 0) {
    expect((await system.command("accounts", "Deposit", { accountId, amountCents: cents })).status).toBe("accepted");
  }
}

/** Waits until every view of an account reflects the same version, and returns them. */
async function settledAccount(accountId: string): Promise<{ balance: Balance; statement: Statement | undefined }> {
  return waitFor(async () => {
    const state = await view<Balance>(system, `accounts/balances/${accountId}`);
    const statement = await view<Statement>(system, `statements/history/${accountId}`);
    if (state === undefined) return undefined;
    if (state.version > 1 && statement?.version !== state.version) return undefined;
    return { balance: state, statement };
  }, `views of ${accountId} settled`);
}

async function finalTransfer(transferId: string): Promise<Transfer> {
  return waitFor(async () => {
    const item = await view<Transfer>(system, `transfers/transfers/${transferId}`);
    return item?.status === "COMPLETED" || item?.status === "FAILED" ? item : undefined;
  }, `transfer ${transferId} finished`);
}

describe("one history per account under concurrency", () => {
  it("20 concurrent withdrawals of 100 against 1000 leave exactly 0 and never go negative", async () => {
    await openWith("race-1", 1000);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () =>
        system.command("accounts", "Withdraw", { accountId: "race-1", amountCents: 100 }),
      ),
    );
    const accepted = outcomes.filter((o) => o.status === "accepted");
    const rejected = outcomes.filter((o) => o.status === "rejected");
    expect(accepted).toHaveLength(10);
    expect(rejected).toHaveLength(10);
    for (const r of rejected) expect(r.reason).toMatch(/insufficient funds/);
    // Every accepted withdrawal took its own version: one history, no two events share a version.
    const versions = accepted.flatMap((o) => o.events?.map((e) => e.version) ?? []).sort((a, b) => a - b);
    expect(versions).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const { balance, statement } = await settledAccount("race-1");
    expect(balance.balanceCents).toBe(0);
    expect(statement?.entries.every((e) => e.balanceAfterCents >= 0)).toBe(true);
    expect(statement?.entries.reduce((sum, e) => sum + e.amountCents, 0)).toBe(0);
  });
});

describe("the transfer saga", () => {
  it("moves money: debit, credit, COMPLETED; statements sum to the balances", async () => {
    await openWith("t-a", 1000);
    await openWith("t-b", 0);
    const outcome = await system.command("transfers", "RequestTransfer", {
      transferId: "tr-1",
      fromAccountId: "t-a",
      toAccountId: "t-b",
      amountCents: 300,
    });
    expect(outcome.status).toBe("accepted");
    expect(await finalTransfer("tr-1")).toMatchObject({ status: "COMPLETED", amountCents: 300 });
    const a = await settledAccount("t-a");
    const b = await settledAccount("t-b");
    expect(a.balance.balanceCents).toBe(700);
    expect(b.balance.balanceCents).toBe(300);
    expect(a.statement?.entries.map((e) => [e.type, e.amountCents, e.balanceAfterCents])).toEqual([
      ["FundsDeposited", 1000, 1000],
      ["FundsDebitedForTransfer", -300, 700],
    ]);
    expect(b.statement?.entries.map((e) => [e.type, e.amountCents])).toEqual([["FundsCreditedForTransfer", 300]]);
  });

  it("fails a transfer the source cannot cover, moving nothing", async () => {
    await openWith("t-c", 100);
    await openWith("t-d", 0);
    await system.command("transfers", "RequestTransfer", {
      transferId: "tr-2",
      fromAccountId: "t-c",
      toAccountId: "t-d",
      amountCents: 101,
    });
    const transfer = await finalTransfer("tr-2");
    expect(transfer.status).toBe("FAILED");
    expect(transfer.reason).toMatch(/debit refused: insufficient funds/);
    expect((await settledAccount("t-c")).balance.balanceCents).toBe(100);
    expect((await settledAccount("t-d")).balance.balanceCents).toBe(0);
  });

  it("refunds the source when the target does not exist, then fails", async () => {
    await openWith("t-e", 500);
    await system.command("transfers", "RequestTransfer", {
      transferId: "tr-3",
      fromAccountId: "t-e",
      toAccountId: "t-nowhere",
      amountCents: 200,
    });
    const transfer = await finalTransfer("tr-3");
    expect(transfer.status).toBe("FAILED");
    expect(transfer.reason).toMatch(/credit refused: account t-nowhere does not exist/);
    const e = await waitFor(async () => {
      const settled = await settledAccount("t-e");
      return settled.statement?.entries.length === 3 ? settled : undefined;
    }, "refund on t-e's statement");
    expect(e.balance.balanceCents).toBe(500);
    expect(e.statement?.entries.map((x) => [x.type, x.amountCents])).toEqual([
      ["FundsDeposited", 500],
      ["FundsDebitedForTransfer", -200],
      ["FundsRefundedForTransfer", 200],
    ]);
    expect(await view(system, "accounts/balances/t-nowhere")).toBeUndefined();
  });

  it("racing transfers between two accounts conserve their total and all end COMPLETED or FAILED", async () => {
    await openWith("r-a", 1000);
    await openWith("r-b", 1000);
    const requests = Array.from({ length: 16 }, (_, i) => ({
      transferId: `race-${i}`,
      fromAccountId: i % 2 === 0 ? "r-a" : "r-b",
      toAccountId: i % 2 === 0 ? "r-b" : "r-a",
      amountCents: 150 + i * 25,
    }));
    const outcomes = await Promise.all(requests.map((r) => system.command("transfers", "RequestTransfer", r)));
    expect(outcomes.every((o) => o.status === "accepted")).toBe(true);
    const transfers = await Promise.all(requests.map((r) => finalTransfer(r.transferId)));
    expect(transfers.every((t) => t.status === "COMPLETED" || t.status === "FAILED")).toBe(true);
    const a = await settledAccount("r-a");
    const b = await settledAccount("r-b");
    expect(a.balance.balanceCents + b.balance.balanceCents).toBe(2000);
    for (const account of [a, b]) {
      expect(account.balance.balanceCents).toBeGreaterThanOrEqual(0);
      expect(account.statement?.entries.every((e) => e.balanceAfterCents >= 0)).toBe(true);
      expect(account.statement?.entries.reduce((sum, e) => sum + e.amountCents, 0)).toBe(account.balance.balanceCents);
    }
    // The net of completed transfers explains each balance exactly.
    let expectedA = 1000;
    transfers.forEach((t, i) => {
      const r = requests[i];
      if (t.status !== "COMPLETED" || r === undefined) return;
      expectedA += r.fromAccountId === "r-a" ? -r.amountCents : r.amountCents;
    });
    expect(a.balance.balanceCents).toBe(expectedA);
  });

  it("a redelivered saga event never debits twice", async () => {
    await openWith("d-a", 1000);
    await openWith("d-b", 0);
    const requested = await system.command("transfers", "RequestTransfer", {
      transferId: "tr-dup",
      fromAccountId: "d-a",
      toAccountId: "d-b",
      amountCents: 400,
    });
    expect((await finalTransfer("tr-dup")).status).toBe("COMPLETED");
    const before = await settledAccount("d-a");
    expect(before.balance.balanceCents).toBe(600);

    // Redeliver the TransferRequested event to the saga's queue, past any deduplication window.
    const event = requested.events?.[0];
    expect(event?.type).toBe("TransferRequested");
    const envelope = {
      specversion: "1.0",
      id: event?.id,
      source: "canon/core/transfers",
      type: event?.type,
      subject: "tr-dup",
      time: new Date().toISOString(),
      datacontenttype: "application/json",
      data: event?.data,
      aggregatetype: "Transfer",
      aggregateversion: event?.version,
      commitid: requested.commandId,
      commandid: requested.commandId,
      causationid: requested.commandId,
      correlationid: requested.commandId,
      schemaversion: 1,
    };
    const sagaQueueUrl = system.resources.queueUrls.get("transfers-saga") as string;
    await sqsClient().send(
      new SendMessageCommand({
        QueueUrl: sagaQueueUrl,
        MessageBody: JSON.stringify(envelope),
        MessageGroupId: "Transfer#tr-dup",
        MessageDeduplicationId: `redelivery-${Date.now()}`,
      }),
    );
    for (const queueId of ["transfers-saga", "accounts-commands"]) await drained(queueId);
    // A fresh command after the redelivery proves the accounts handler has moved past it.
    await system.command("accounts", "Deposit", { accountId: "d-a", amountCents: 1 });
    const after = await waitFor(async () => {
      const settled = await settledAccount("d-a");
      return settled.balance.version === before.balance.version + 1 ? settled : undefined;
    }, "d-a after the redelivery");
    expect(after.balance.balanceCents).toBe(601);
    expect(after.statement?.entries.filter((e) => e.type === "FundsDebitedForTransfer")).toHaveLength(1);
  });
});

/** Waits until a queue has nothing visible or in flight. */
async function drained(queueId: string): Promise<void> {
  const url = system.resources.queueUrls.get(queueId) as string;
  await waitFor(async () => {
    const { Attributes } = await sqsClient().send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    const total =
      Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
    return total === 0 ? true : undefined;
  }, `queue ${queueId} drained`);
}
