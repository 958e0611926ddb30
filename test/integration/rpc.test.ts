/**
 * The API's Protobuf services over the wire (shared/api/rpc.ts): clients built from the
 * generated descriptors (events/gen) call `canon dev`'s system over native gRPC (HTTP/2
 * cleartext, the gRPC port), Connect and gRPC-Web (the HTTP API's port, HTTP/1.1, as on AWS).
 * Commands, their outcomes and views read back; bad input gets a clear status and loses
 * nothing: invalid fields, a reused idempotency key, unknown methods, oversized messages,
 * malformed frames and bodies.
 */
import { connect as http2Connect } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueryService } from "../../events/gen/canon/api/v1/queries_pb.ts";
import {
  AccountsService,
  AccountTransferLegsService,
  DepositSchema,
} from "../../events/gen/canon/bank/accounts/v1/accounts_pb.ts";
import { TransfersService } from "../../events/gen/canon/bank/transfers/v1/transfers_pb.ts";
import { removeDataDir, startSystem, type TestSystem, waitFor } from "../support/system.ts";

let system: TestSystem;
let transports: Record<"grpc" | "connect" | "grpc-web", Transport>;

beforeAll(async () => {
  system = await startSystem();
  transports = {
    grpc: createGrpcTransport({ baseUrl: `http://${system.grpcAddress}` }),
    connect: createConnectTransport({ baseUrl: system.url, httpVersion: "1.1" }),
    "grpc-web": createGrpcWebTransport({ baseUrl: system.url, httpVersion: "1.1" }),
  };
}, 120_000);

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

async function outcomeOf(queries: Client<typeof QueryService>, commandId: string) {
  return waitFor(async () => {
    const outcome = await queries.getCommandOutcome({ commandId });
    return outcome.status === "pending" ? undefined : outcome;
  }, `outcome of ${commandId}`);
}

async function codeOf(call: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await call;
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error("the call succeeded");
}

describe.each(["grpc", "connect", "grpc-web"] as const)("over %s", (protocol) => {
  it("opens an account, deposits, and reads the outcome and the balance back", async () => {
    const accounts = createClient(AccountsService, transports[protocol]);
    const queries = createClient(QueryService, transports[protocol]);
    const accountId = `rpc-${protocol}`;
    const opened = await accounts.openAccount({ accountId, owner: "Ada" });
    expect((await outcomeOf(queries, opened.commandId)).status).toBe("accepted");
    const deposit = await accounts.deposit(
      { accountId, amountCents: 2_500n },
      { headers: { "idempotency-key": `${accountId}-d1` } },
    );
    const outcome = await outcomeOf(queries, deposit.commandId);
    expect(outcome).toMatchObject({ status: "accepted", command: "Deposit", aggregateId: accountId });
    expect(outcome.events[0]).toMatchObject({ type: "FundsDeposited", version: 2n });
    expect(outcome.events[0]?.data).toMatchObject({ accountId, amountCents: 2500 });

    // The same key again: the same command, not a second deposit.
    const again = await accounts.deposit(
      { accountId, amountCents: 2_500n },
      { headers: { "idempotency-key": `${accountId}-d1` } },
    );
    expect(again.commandId).toBe(deposit.commandId);
    const balance = await waitFor(async () => {
      const { item } = await queries.getViewItem({ service: "accounts", view: "balances", key: accountId });
      return item?.balanceCents === 2500 ? item : undefined;
    }, "the balance");
    expect(balance).toMatchObject({ accountId, owner: "Ada", balanceCents: 2500 });
    // The HTTP API agrees.
    expect(await (await system.get(`/views/accounts/balances/${accountId}`)).json()).toMatchObject({
      balanceCents: 2500,
    });
  });

  it("answers bad input with a clear status, in the API's words", async () => {
    const accounts = createClient(AccountsService, transports[protocol]);
    const queries = createClient(QueryService, transports[protocol]);
    const transfers = createClient(TransfersService, transports[protocol]);
    expect(await codeOf(accounts.deposit({ accountId: "x", amountCents: 0n }))).toEqual({
      code: Code.InvalidArgument,
      message: expect.stringMatching(/^amountCents: /),
    });
    expect(await codeOf(accounts.openAccount({ accountId: "bad id!", owner: "x" }))).toMatchObject({
      code: Code.InvalidArgument,
      message: expect.stringMatching(/^accountId: /),
    });
    expect(await codeOf(accounts.openAccount({ accountId: "", owner: "" }))).toMatchObject({
      code: Code.InvalidArgument,
    });
    // A key reused for another request.
    const key = { headers: { "idempotency-key": `reused-${protocol}` } };
    await accounts.openAccount({ accountId: `reuse-${protocol}`, owner: "A" }, key);
    expect(await codeOf(accounts.openAccount({ accountId: `reuse-${protocol}`, owner: "B" }, key))).toEqual({
      code: Code.AlreadyExists,
      message: "Idempotency-Key was already used for a different request",
    });
    expect(
      await codeOf(accounts.deposit({ accountId: "x", amountCents: 1n }, { headers: { "idempotency-key": "é" } })),
    ).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/Idempotency-Key/) });
    // Unknown ids and views.
    expect((await codeOf(queries.getCommandOutcome({ commandId: "no-such-command" }))).code).toBe(Code.NotFound);
    expect((await codeOf(queries.getCommandOutcome({ commandId: "../etc" }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(queries.getViewItem({ service: "accounts", view: "nope", key: "k" }))).code).toBe(
      Code.NotFound,
    );
    expect((await codeOf(queries.getViewItem({ service: "accounts", view: "balances", key: "none" }))).code).toBe(
      Code.NotFound,
    );
    expect(await codeOf(transfers.requestTransfer({ transferId: "" }))).toMatchObject({ code: Code.InvalidArgument });
    // A service the API does not serve (the saga's transfer legs), and an oversized message.
    const legs = createClient(AccountTransferLegsService, transports[protocol]);
    const leg = { accountId: "a", transferId: "t", amountCents: 1n, toAccountId: "b" };
    expect((await codeOf(legs.debitForTransfer(leg))).code).toBe(Code.Unimplemented);
    const huge = await codeOf(accounts.openAccount({ accountId: "big", owner: "x".repeat(70_000) }));
    expect(huge.code).toBe(Code.ResourceExhausted);
  });
});

describe("malformed calls", () => {
  /** One raw HTTP/2 request to the gRPC port. */
  function h2(path: string, headers: Record<string, string>, body: Buffer) {
    return new Promise<{ status: number; grpcStatus?: string; grpcMessage?: string }>((resolve, reject) => {
      const session = http2Connect(`http://${system.grpcAddress}`);
      session.on("error", reject);
      const stream = session.request({ ":method": "POST", ":path": path, ...headers });
      const result: { status: number; grpcStatus?: string; grpcMessage?: string } = { status: 0 };
      stream.on("response", (h) => {
        result.status = Number(h[":status"]);
        if (h["grpc-status"] !== undefined) result.grpcStatus = String(h["grpc-status"]);
        if (h["grpc-message"] !== undefined) result.grpcMessage = decodeURIComponent(String(h["grpc-message"]));
      });
      stream.on("trailers", (t) => {
        if (t["grpc-status"] !== undefined) result.grpcStatus = String(t["grpc-status"]);
        if (t["grpc-message"] !== undefined) result.grpcMessage = decodeURIComponent(String(t["grpc-message"]));
      });
      stream.on("data", () => {});
      stream.on("end", () => {
        session.close();
        resolve(result);
      });
      stream.on("error", reject);
      stream.end(body);
    });
  }
  const grpc = { "content-type": "application/grpc+proto", te: "trailers" };
  const frame = (payload: Buffer, length = payload.length) => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(length, 1);
    return Buffer.concat([head, payload]);
  };

  it("an unknown method is UNIMPLEMENTED, over native gRPC and the API's port", async () => {
    const unknown = await h2("/canon.bank.accounts.v1.AccountsService/Explode", grpc, frame(Buffer.alloc(0)));
    expect(unknown.grpcStatus).toBe(String(Code.Unimplemented));
    const overHttp = await fetch(`${system.url}/canon.bank.accounts.v1.AccountsService/Explode`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(overHttp.status).toBe(404);
    expect(await overHttp.json()).toMatchObject({ code: "unimplemented" });
  });

  it("a truncated frame, garbage bytes or a wrong field type is refused, and the server goes on", async () => {
    const path = "/canon.bank.accounts.v1.AccountsService/Deposit";
    const valid = Buffer.from(toBinary(DepositSchema, create(DepositSchema, { accountId: "f", amountCents: 1n })));
    const truncated = await h2(path, grpc, frame(valid, valid.length + 40));
    expect(truncated.grpcStatus).toBe(String(Code.InvalidArgument));
    // Bytes that are no Deposit: INTERNAL, as gRPC's own servers answer a message they cannot parse.
    const garbage = await h2(path, grpc, frame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])));
    expect(garbage).toMatchObject({
      grpcStatus: String(Code.Internal),
      grpcMessage: expect.stringMatching(/parse|binary|decode/i),
    });
    const notJson = await fetch(`${system.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(notJson.status).toBe(400);
    const wrongType = await fetch(`${system.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ accountId: 5, amountCents: "many" }),
    });
    expect(wrongType.status).toBe(400);
    // In the JSON API's words, not protobuf-es's.
    expect(await wrongType.json()).toEqual({ code: "invalid_argument", message: "accountId: must be text; got 5" });
    const oversized = await fetch(`${system.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ accountId: "x".repeat(80_000) }),
    });
    expect(await oversized.json()).toMatchObject({ code: "resource_exhausted" });
    // Still serving, and nothing of the above was taken in.
    const accounts = createClient(AccountsService, transports.grpc);
    const queries = createClient(QueryService, transports.grpc);
    const ok = await accounts.openAccount({ accountId: "after-garbage", owner: "B" });
    expect((await outcomeOf(queries, ok.commandId)).status).toBe("accepted");
    expect((await codeOf(queries.getViewItem({ service: "accounts", view: "balances", key: "f" }))).code).toBe(
      Code.NotFound,
    );
  });
});
