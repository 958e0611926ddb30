/** The contracts: schemas, services and the envelope agree with the code that uses them. */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CommitSchema } from "../../events/gen/canon/envelope/v1/envelope_pb.ts";
import { upcasters } from "../../events/upcasters.ts";
import { accountContract } from "../../functions/accounts/contract.ts";
import { app } from "../../functions/app.ts";
import { transferContract } from "../../functions/transfers/contract.ts";
import { contractsOf, validateCommand } from "../../shared/domain/commands.ts";
import { buildCommit, type NewEvent } from "../../shared/events/envelope.ts";
import { checkEvent, InvalidEventError } from "../../shared/events/schemas.ts";
import { upcast } from "../../shared/events/upcast.ts";

/** A commit of one event for account "a", decided against `expectedVersion`. */
function accountCommit(expectedVersion: number, event: NewEvent) {
  const meta = { commandId: "c", attempt: 1, service: "accounts", bus: "core", aggregateType: "Account" };
  return buildCommit(
    "events",
    { ...meta, aggregateId: "a", expectedVersion, correlationId: "c", causationId: "c", now: new Date(0) },
    [event],
  );
}

const contracts = contractsOf(app);
const accountEventSchemas = accountContract.events;
const transferEventSchemas = transferContract.events;

describe("command contracts", () => {
  it("are found from the services' declarations, and a service whose API takes commands must declare one", () => {
    expect(Object.keys(contracts).sort()).toEqual(["accounts", "transfers"]);
    const accounts = app.services.find((s) => s.name === "accounts");
    expect(contracts.accounts).toBe(accounts?.contract);
    const { contract: _, ...undeclared } = accounts ?? { name: "accounts" };
    expect(() => contractsOf({ services: [undeclared] })).toThrow(
      "accounts: no command in its contract for OpenAccount, Deposit, Withdraw",
    );
  });

  it("give every command the API routes a schema (the routes map one to one onto the rpcs)", () => {
    for (const service of app.services) {
      for (const name of service.commands ?? [])
        expect(contracts[service.name]?.[name], `${service.name}.${name}`).toBeDefined();
    }
  });

  it("apply the schema's field rules, naming the field", () => {
    const deposit = (body: unknown) => validateCommand(contracts.accounts ?? {}, "Deposit", body);
    expect(deposit({ accountId: "a", amountCents: 5 })).toEqual({
      ok: true,
      command: { type: "Deposit", accountId: "a", amountCents: 5 },
      aggregateId: "a",
    });
    // The Protobuf JSON mapping accepts 64-bit integers as strings; the domain sees numbers.
    expect(deposit({ accountId: "a", amountCents: "5" })).toMatchObject({ ok: true, command: { amountCents: 5 } });
    expect(deposit({ accountId: "a", amountCents: 0 })).toMatchObject({
      ok: false,
      error: /^amountCents: must be greater than 0/,
    });
    expect(deposit({ account_id: "a", amountCents: 1 })).toMatchObject({ ok: true }); // proto names are accepted too
    const transfer = validateCommand(contracts.transfers ?? {}, "RequestTransfer", {
      transferId: "t",
      fromAccountId: "a",
      toAccountId: "a",
      amountCents: 1,
    });
    expect(transfer).toMatchObject({ ok: false, status: 400, error: /toAccountId must differ from fromAccountId/ });
  });
});

describe("event schemas", () => {
  it("accept the events the deciders produce and refuse off-contract ones", () => {
    expect(checkEvent(accountEventSchemas, "FundsDeposited", { accountId: "a", amountCents: 5 })).toBe(1);
    expect(checkEvent(accountEventSchemas, "AccountOpened", { accountId: "a", owner: "Ada" })).toBe(2);
    expect(() => checkEvent(accountEventSchemas, "FundsDeposited", { accountId: "a", amount: 5 })).toThrow(
      InvalidEventError,
    );
    expect(() => checkEvent(transferEventSchemas, "TransferDone", {})).toThrow(/has no schema/);
  });

  it("read a version 1 AccountOpened as version 2", () => {
    const [v1] = accountCommit(0, { type: "AccountOpened", data: { accountId: "a", ownerName: "Ada" } }).events;
    if (v1 === undefined) throw new Error("no event");
    const read = upcast({ ...v1, schemaversion: 1 }, upcasters);
    expect(read.schemaversion).toBe(2);
    expect(read.data).toEqual({ accountId: "a", owner: "Ada" });
    expect(checkEvent(accountEventSchemas, read.type, read.data)).toBe(2);
    expect(upcast(read, upcasters)).toBe(read);
  });
});

describe("the envelope", () => {
  it("is what the Commit message in envelope.proto describes (for readers in other languages)", () => {
    const commit = accountCommit(3, { type: "FundsDeposited", data: { accountId: "a", amountCents: 5 } });
    const decoded = fromJson(CommitSchema, JSON.parse(JSON.stringify(commit)) as JsonValue);
    expect(decoded.commitId).toBe(commit.commitId);
    expect(decoded.events[0]?.aggregateversion).toBe(4n);
    expect(decoded.events[0]?.data).toEqual({ accountId: "a", amountCents: 5 });
  });
});
