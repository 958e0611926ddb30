/**
 * The API's Connect and gRPC-Web routes as one fetch handler: `POST /{package}.{Service}/{Method}`
 * (shared/api/rpc.ts). Deployed as a function of its own (shared/entries/rpc.ts, the
 * HTTP API's `POST /{service}/{method}` route), so the JSON API's function does not carry
 * connect-es, nor this one the JSON API's router; locally, dev.ts mounts it beside the JSON
 * API on the same port.
 */
import { validateCommand } from "../domain/commands.ts";
import { functionLogger } from "../log.ts";
import { formatTraceparent } from "../telemetry/trace-context.ts";
import { type ApiOptions, maxCommandBytes } from "./intake.ts";
import { commandServices, rpcFetchHandlers } from "./rpc.ts";
import { recordRequest, requestTrace } from "./trace.ts";

const logger = /* @__PURE__ */ functionLogger("api");

/** The Hono route pattern of an rpc path (a package-qualified service, then a method). */
export const rpcPathPattern = "/:service{[A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)+}/:method";

export function rpcFetch(options: ApiOptions): (request: Request) => Promise<Response> {
  const rpcs = rpcFetchHandlers(options);
  const commands = new Map<string, { readonly service: string; readonly command: string }>(
    commandServices(options).flatMap(({ service, desc }) =>
      desc.methods.map((m) => [`/${desc.typeName}/${m.name}`, { service, command: m.name }]),
    ),
  );
  return async (request) => {
    const trace = requestTrace(request.headers.get("traceparent"));
    const response = await answer(request, trace);
    // The path names a method, never an id: it is the route.
    await recordRequest(trace, {
      method: request.method,
      route: new URL(request.url).pathname,
      status: response.status,
    });
    return response;
  };

  async function answer(request: Request, trace: ReturnType<typeof requestTrace>): Promise<Response> {
    const path = new URL(request.url).pathname;
    const handler = request.method === "POST" ? rpcs.get(path) : undefined;
    if (handler === undefined) {
      return Response.json({ code: "unimplemented", message: `no rpc ${path.slice(1)}` }, { status: 404 });
    }
    try {
      const refused = await refusedConnectJson(options, commands.get(path), request);
      if (refused !== undefined) return refused;
      // The rpc continues the request's span (the command it takes is a child of it).
      const headers = new Headers(request.headers);
      headers.set("traceparent", formatTraceparent(trace.context));
      // The rpc reads at most maxCommandBytes and answers a larger message RESOURCE_EXHAUSTED itself.
      return await handler(new Request(request, { headers }));
    } catch (error) {
      logger.error("rpc error", { error, route: path, traceId: trace.context.traceId });
      return Response.json({ code: "internal", message: "internal error" }, { status: 500 });
    }
  }
}

/**
 * A Connect unary call with a JSON body is checked as the JSON API checks it, before connect-es
 * decodes it, so its refusal is in the same words (field, rule, value; an unknown field refused,
 * not dropped). Anything else — binary, gRPC-Web, malformed or oversized JSON — goes on to the rpc.
 */
async function refusedConnectJson(
  options: ApiOptions,
  route: { readonly service: string; readonly command: string } | undefined,
  request: Request,
): Promise<Response | undefined> {
  const contract = route === undefined ? undefined : options.contracts[route.service];
  if (route === undefined || contract === undefined) return undefined;
  if (request.headers.get("content-type")?.split(";")[0]?.trim() !== "application/json") return undefined;
  const body = await boundedText(request.clone(), maxCommandBytes);
  let payload: unknown;
  try {
    payload = body === undefined ? undefined : JSON.parse(body);
  } catch {
    return undefined;
  }
  if (payload === undefined) return undefined;
  const checked = validateCommand(contract, route.command, payload);
  if (checked.ok) return undefined;
  return Response.json({ code: "invalid_argument", message: checked.error }, { status: 400 });
}

/** A body's text, or undefined when it is larger than `limit` bytes (read no further than that). */
async function boundedText(request: Request, limit: number): Promise<string | undefined> {
  const reader = request.body?.getReader();
  if (reader === undefined) return "";
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
