/**
 * The deployed API's rpc function (shared/entries/rpc.ts) takes Connect and gRPC-Web calls as
 * API Gateway's HTTP API delivers them (payload format 2.0, binary bodies base64-encoded), and
 * answers in each protocol's terms. Only refusals are tried here: they are decided before any
 * AWS call (accepted calls are tested over the wire in test/integration/rpc.test.ts).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { DepositSchema } from "../../events/gen/canon/bank/accounts/v1/accounts_pb.ts";
import { accountContract } from "../../functions/accounts/contract.ts";
import { app } from "../../functions/app.ts";
import { transferContract } from "../../functions/transfers/contract.ts";
import { rpcLambda } from "../../shared/entries/rpc.ts";

const handler = rpcLambda(app, { accounts: accountContract, transfers: transferContract });

function event(path: string, contentType: string, body: Buffer): APIGatewayProxyEventV2 {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: { "content-type": contentType, host: "api.example.com" },
    body: body.toString("base64"),
    isBase64Encoded: true,
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      domainName: "api.example.com",
      domainPrefix: "api",
      http: { method: "POST", path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
      requestId: "r",
      routeKey: "$default",
      stage: "$default",
      time: "02/Dec/2026:00:00:00 +0000",
      timeEpoch: 0,
    },
  };
}

async function invoke(e: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  return (await handler(e as never, {} as Context)) as APIGatewayProxyStructuredResultV2;
}

const path = "/canon.bank.accounts.v1.AccountsService/Deposit";
const zero = Buffer.from(toBinary(DepositSchema, create(DepositSchema, { accountId: "a", amountCents: 0n })));

describe("the API's Lambda behind API Gateway", () => {
  it("answers a Connect call (JSON) with invalid_argument in the API's words", async () => {
    const result = await invoke(event(path, "application/json", Buffer.from('{"accountId":"a","amountCents":"0"}')));
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(String(result.body))).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(/^amountCents: must be greater than 0/),
    });
  });

  it("refuses what the JSON mapping refuses in the JSON API's words (field, rule, value), unknown fields too", async () => {
    const cases: [string, string][] = [
      [
        '{"accountId":"a","amountCents":-5}',
        "amountCents: must be a whole number from 0 to 18446744073709551615; got -5",
      ],
      ['{"accountId":"a","amountCents":1.5}', "amountCents: must be a whole number, without a fraction; got 1.5"],
      ['{"accountId":7,"amountCents":1}', "accountId: must be text; got 7"],
      [
        '{"accountId":"a","amountCents":1,"extra":1}',
        "extra: not a field of Deposit (its fields: accountId, amountCents); got 1",
      ],
    ];
    for (const [body, message] of cases) {
      const result = await invoke(event(path, "application/json", Buffer.from(body)));
      expect(result.statusCode, body).toBe(400);
      expect(JSON.parse(String(result.body)), body).toEqual({ code: "invalid_argument", message });
    }
  });

  it("reads a Connect call's binary Protobuf body", async () => {
    const result = await invoke(event(path, "application/proto", zero));
    expect(result.statusCode).toBe(400);
    const body = result.isBase64Encoded ? Buffer.from(String(result.body), "base64").toString() : String(result.body);
    expect(JSON.parse(body)).toMatchObject({ code: "invalid_argument" });
  });

  it("answers a gRPC-Web call with its status in the trailers, base64 for API Gateway", async () => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(zero.length, 1);
    const result = await invoke(event(path, "application/grpc-web+proto", Buffer.concat([head, zero])));
    expect(result.statusCode).toBe(200);
    expect(result.isBase64Encoded).toBe(true);
    const trailers = Buffer.from(String(result.body), "base64").toString("latin1");
    expect(trailers).toMatch(/grpc-status: ?3/);
    expect(decodeURIComponent(trailers)).toMatch(/amountCents: must be greater than 0/);
  });

  it("answers an unknown method 404 unimplemented", async () => {
    const result = await invoke(
      event("/canon.bank.accounts.v1.AccountsService/Nope", "application/json", Buffer.from("{}")),
    );
    expect(result.statusCode).toBe(404);
    expect(JSON.parse(String(result.body))).toMatchObject({ code: "unimplemented" });
  });
});
