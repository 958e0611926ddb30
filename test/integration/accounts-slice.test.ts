/**
 * The first vertical slice over the wire: HTTP API → SQS FIFO → command handler → Kinesis →
 * relay → SNS FIFO → SQS → projections → DynamoDB → HTTP API, on the embedded local cloud.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDataDir, startSystem, type TestSystem, view, waitFor } from "../support/system.ts";

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

describe("the accounts slice", () => {
  it("answers /health once ready", async () => {
    const response = await system.get("/health");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("opens an account, deposits and reads the balance", async () => {
    const opened = await system.command("accounts", "OpenAccount", { accountId: "slice-1", owner: "Ada" });
    expect(opened.status).toBe("accepted");
    expect(opened.events?.map((e) => [e.type, e.version])).toEqual([["AccountOpened", 1]]);

    const deposited = await system.command("accounts", "Deposit", { accountId: "slice-1", amountCents: 2500 });
    expect(deposited.status).toBe("accepted");

    const balance = await waitFor(async () => {
      const item = await view<{ balanceCents: number; version: number }>(system, "accounts/balances/slice-1");
      return item?.version === 2 ? item : undefined;
    }, "balance at version 2");
    expect(balance).toEqual({ accountId: "slice-1", owner: "Ada", balanceCents: 2500, version: 2 });
  });

  it("rejects a withdrawal beyond the balance with a reason, and the balance is unchanged", async () => {
    await system.command("accounts", "OpenAccount", { accountId: "slice-2", owner: "Bob" });
    await system.command("accounts", "Deposit", { accountId: "slice-2", amountCents: 100 });
    const outcome = await system.command("accounts", "Withdraw", { accountId: "slice-2", amountCents: 101 });
    expect(outcome.status).toBe("rejected");
    expect(outcome.reason).toMatch(/insufficient funds/);
    const accepted = await system.command("accounts", "Withdraw", { accountId: "slice-2", amountCents: 100 });
    expect(accepted.status).toBe("accepted");
    const item = await waitFor(async () => {
      const found = await view<{ version: number; balanceCents: number }>(system, "accounts/balances/slice-2");
      return found?.version === 3 ? found : undefined;
    }, "slice-2 at version 3");
    expect(item.balanceCents).toBe(0);
  });

  it("rejects commands for an account that does not exist", async () => {
    const outcome = await system.command("accounts", "Deposit", { accountId: "nobody", amountCents: 5 });
    expect(outcome).toMatchObject({ status: "rejected", reason: "account nobody does not exist" });
    expect(await view(system, "accounts/balances/nobody")).toBeUndefined();
  });

  it("rejects opening the same account twice", async () => {
    await system.command("accounts", "OpenAccount", { accountId: "slice-3", owner: "Cy" });
    const again = await system.command("accounts", "OpenAccount", { accountId: "slice-3", owner: "Cy" });
    expect(again).toMatchObject({ status: "rejected", reason: "account slice-3 is already open" });
  });

  it("returns the same command id and outcome for a repeated Idempotency-Key, and applies it once", async () => {
    await system.command("accounts", "OpenAccount", { accountId: "slice-4", owner: "Di" });
    const headers = { "Idempotency-Key": "deposit-slice-4-once" };
    const first = await system.command("accounts", "Deposit", { accountId: "slice-4", amountCents: 700 }, headers);
    const second = await system.command("accounts", "Deposit", { accountId: "slice-4", amountCents: 700 }, headers);
    expect(second.commandId).toBe(first.commandId);
    expect(second).toEqual(first);
    // A third command after the repeats proves the repeats did not move the balance.
    await system.command("accounts", "Deposit", { accountId: "slice-4", amountCents: 1 });
    const item = await waitFor(async () => {
      const found = await view<{ version: number; balanceCents: number }>(system, "accounts/balances/slice-4");
      return found?.version === 3 ? found : undefined;
    }, "slice-4 at version 3");
    expect(item.balanceCents).toBe(701);
  });

  it("refuses an Idempotency-Key reused for a different request", async () => {
    const headers = { "Idempotency-Key": "reused-key" };
    expect(
      (await system.post("/commands/accounts/OpenAccount", { accountId: "k-1", owner: "A" }, headers)).status,
    ).toBe(202);
    const response = await system.post("/commands/accounts/OpenAccount", { accountId: "k-2", owner: "A" }, headers);
    expect(response.status).toBe(422);
    expect(((await response.json()) as { error: string }).error).toMatch(/Idempotency-Key/);
  });
});

describe("bad input at the API", () => {
  it("400 for an invalid body, naming the field", async () => {
    const cases: [unknown, RegExp][] = [
      // The JSON mapping's refusals, in the user's words: field, rule, value.
      [
        { accountId: "a", amountCents: -5 },
        /^amountCents: must be a whole number from 0 to 18446744073709551615; got -5$/,
      ],
      [{ accountId: "a", amountCents: 1.5 }, /^amountCents: must be a whole number, without a fraction; got 1\.5$/],
      [{ accountId: "a", amountCents: true }, /^amountCents: must be a whole number; got true$/],
      [{ accountId: 7, amountCents: 5 }, /^accountId: must be text; got 7$/],
      [
        { accountId: "a", amountCents: 2 ** 53 },
        /^amountCents: must be greater than 0 and less than or equal to 9007199254740991/,
      ],
      [{ accountId: "", amountCents: 5 }, /^accountId: /],
      [{ accountId: "a/../b", amountCents: 5 }, /^accountId: /],
      [{ accountId: "x".repeat(65), amountCents: 5 }, /^accountId: /],
      [{ amountCents: 5 }, /^accountId: /],
      [
        { accountId: "a", amountCents: 5, extra: true },
        /^extra: not a field of Deposit \(its fields: accountId, amountCents\); got true$/,
      ],
      [[1, 2], /\(body\)/],
      [null, /\(body\)/],
      ["just a string", /\(body\)/],
    ];
    for (const [body, error] of cases) {
      const response = await system.post("/commands/accounts/Deposit", JSON.stringify(body));
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(((await response.json()) as { error: string }).error, JSON.stringify(body)).toMatch(error);
    }
  });

  it("400 for malformed JSON", async () => {
    for (const body of ["{", "", "{'a':1}", "\u0000\u0001", "[1,]"]) {
      const response = await system.post("/commands/accounts/OpenAccount", body);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: "body is not valid JSON" });
    }
  });

  it("413 for an oversized body", async () => {
    const response = await system.post("/commands/accounts/OpenAccount", {
      accountId: "big",
      owner: "x".repeat(70_000),
    });
    expect(response.status).toBe(413);
  });

  it("404 for an unknown service, command, view, or command id", async () => {
    expect((await system.post("/commands/nope/OpenAccount", {})).status).toBe(404);
    expect((await system.post("/commands/accounts/Explode", {})).status).toBe(404);
    expect((await system.post("/commands/accounts/__proto__", {})).status).toBe(404);
    expect((await system.post("/commands/accounts/constructor", {})).status).toBe(404);
    expect((await system.get("/views/accounts/nope/x")).status).toBe(404);
    expect((await system.get("/views/accounts/balances/never-opened")).status).toBe(404);
    expect((await system.get("/commands/00000000-0000-0000-0000-000000000000")).status).toBe(404);
    expect((await system.get("/nowhere")).status).toBe(404);
  });

  it("400 for a malformed Idempotency-Key or path key", async () => {
    const bad = await system.post(
      "/commands/accounts/OpenAccount",
      { accountId: "k", owner: "A" },
      {
        "Idempotency-Key": "x".repeat(129),
      },
    );
    expect(bad.status).toBe(400);
    expect((await system.get(`/views/accounts/balances/${"k".repeat(300)}`)).status).toBe(400);
    expect((await system.get("/commands/bad%20id")).status).toBe(400);
  });
});
