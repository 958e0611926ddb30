/**
 * The API's commands and queries as Protobuf services, over the Connect protocol, gRPC and
 * gRPC-Web (connect-es): a client in any language calls Canon with stubs generated from
 * `events/proto`. Each service's command rpcs are found from its contract (the `service` in the
 * `.proto` file of its command messages whose rpcs are the service's API commands), so nothing
 * is declared twice; the queries are `canon.api.v1.QueryService` (events/proto/canon/api/v1).
 *
 * Every rpc goes through the same intake as the JSON HTTP API (intake.ts): the same validation,
 * idempotency (an `idempotency-key` header, i.e. gRPC metadata), outcome and view reads. Errors
 * map onto gRPC status codes: a bad field is INVALID_ARGUMENT, an unknown id NOT_FOUND, a key
 * reused for another request ALREADY_EXISTS, a message over the body limit RESOURCE_EXHAUSTED,
 * an unknown method UNIMPLEMENTED.
 *
 * Served locally by dev.ts (HTTP/2 cleartext for native gRPC; the HTTP API's port for Connect
 * and gRPC-Web) and on AWS by the API's Lambda through API Gateway (Connect and gRPC-Web, which
 * work over HTTP/1.1); see docs/deploy.md for native gRPC on AWS.
 */
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  type JsonObject,
  type JsonValue,
  toJson,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, createConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { createFetchHandler, type UniversalHandler } from "@connectrpc/connect/protocol";
import {
  GetCommandOutcomeResponseSchema,
  GetViewItemResponseSchema,
  OutcomeEventSchema,
  QueryService,
} from "../../events/gen/canon/api/v1/queries_pb.ts";
import { type Answer, type ApiOptions, maxCommandBytes, readOutcome, readView, submitCommand } from "./intake.ts";
import { requestTrace } from "./trace.ts";

/** The header (gRPC metadata) carrying the client's idempotency key. */
export const idempotencyHeader = "idempotency-key";

/** The command services of the app, each with the Canon service it belongs to. */
export function commandServices(options: ApiOptions): { service: string; desc: DescService }[] {
  const found: { service: string; desc: DescService }[] = [];
  for (const service of options.app.services) {
    const contract = options.contracts[service.name];
    const commands = new Set(service.commands ?? []);
    if (contract === undefined || commands.size === 0) continue;
    const files = new Set(Object.values(contract).map((spec) => spec.schema.file));
    const served = new Set<string>();
    for (const file of files) {
      for (const desc of file.services) {
        const api = desc.methods.every((m) => commands.has(m.name) && contract[m.name]?.schema === m.input);
        if (!api) continue;
        found.push({ service: service.name, desc });
        for (const method of desc.methods) served.add(method.name);
      }
    }
    const missing = [...commands].filter((c) => !served.has(c));
    if (missing.length > 0) {
      throw new Error(
        `${service.name}: no Protobuf service in its contract's files serves ${missing.join(", ")} (every rpc of a service the API serves must be one of its commands)`,
      );
    }
  }
  return found;
}

/** The routes: every command service, and the queries. */
export function rpcRoutes(options: ApiOptions): (router: ConnectRouter) => void {
  const services = commandServices(options);
  return (router) => {
    for (const { service, desc } of services) {
      for (const method of desc.methods) {
        router.rpc(
          method as DescMethod & { methodKind: "unary" },
          async (request: unknown, context: HandlerContext) => {
            const payload = toJson(method.input, request as never) as JsonValue;
            const key = context.requestHeader.get(idempotencyHeader) ?? undefined;
            const trace = requestTrace(context.requestHeader.get("traceparent"));
            const answer = await submitCommand(options, service, method.name, payload, key, trace);
            return create(method.output as DescMessage, succeeded(answer).body as never) as never;
          },
          { readMaxBytes: maxCommandBytes },
        );
      }
    }
    router.service(
      QueryService,
      {
        async getCommandOutcome(request) {
          const body = succeeded(await readOutcome(request.commandId)).body;
          return create(GetCommandOutcomeResponseSchema, {
            commandId: String(body.commandId ?? ""),
            status: String(body.status ?? ""),
            command: String(body.command ?? ""),
            aggregateId: String(body.aggregateId ?? ""),
            reason: String(body.reason ?? ""),
            updatedAt: String(body.updatedAt ?? ""),
            events: ((body.events as { id: string; type: string; version: number; data: object }[]) ?? []).map((e) =>
              create(OutcomeEventSchema, { id: e.id, type: e.type, version: BigInt(e.version), data: json(e.data) }),
            ),
          });
        },
        async getViewItem(request) {
          const body = succeeded(await readView(options, request.service, request.view, request.key)).body;
          return create(GetViewItemResponseSchema, { item: json(body) });
        },
      },
      { readMaxBytes: maxCommandBytes },
    );
  };
}

/** The API's answer, or the error it is, as a ConnectError with its gRPC status. */
function succeeded(answer: Answer): Extract<Answer, { ok: true }> {
  if (answer.ok) return answer;
  const code =
    answer.status === 400
      ? Code.InvalidArgument
      : answer.status === 404
        ? Code.NotFound
        : answer.status === 413
          ? Code.ResourceExhausted
          : Code.AlreadyExists;
  const metadata = answer.commandId === undefined ? undefined : { "canon-command-id": answer.commandId };
  throw new ConnectError(answer.error, code, metadata);
}

/** An item as JSON (a google.protobuf.Struct): DynamoDB sets as lists, big integers as numbers. */
function json(value: object): JsonObject {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonValue(v)]));
}

function jsonValue(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "number" || typeof value === "string" || typeof value === "boolean") return value;
  if (value instanceof Set) return [...value].map(jsonValue);
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  return json(value as object);
}

/**
 * The rpcs as fetch handlers by path (`/<package>.<Service>/<Method>`), for an HTTP/1.1 server
 * such as the API's Hono app: Connect and gRPC-Web (native gRPC needs HTTP/2, see dev.ts).
 */
export function rpcFetchHandlers(options: ApiOptions): Map<string, (request: Request) => Promise<Response>> {
  const router = createConnectRouter({ grpc: false, grpcWeb: true, connect: true, readMaxBytes: maxCommandBytes });
  rpcRoutes(options)(router);
  return new Map(router.handlers.map((h: UniversalHandler) => [h.requestPath, createFetchHandler(h)]));
}
