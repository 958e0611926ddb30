/**
 * The API's Connect and gRPC-Web routes as one fetch handler: `POST /{package}.{Service}/{Method}`
 * (shared/api/rpc.ts). Deployed as a function of its own (functions/api/rpc-handler.ts, the
 * HTTP API's `POST /{service}/{method}` route), so the JSON API's function does not carry
 * connect-es, nor this one the JSON API's router; locally, dev.ts mounts it beside the JSON
 * API on the same port.
 */
import type { ApiOptions } from "./intake.ts";
import { rpcFetchHandlers } from "./rpc.ts";

/** The Hono route pattern of an rpc path (a package-qualified service, then a method). */
export const rpcPathPattern = "/:service{[A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)+}/:method";

export function rpcFetch(options: ApiOptions): (request: Request) => Promise<Response> {
  const rpcs = rpcFetchHandlers(options);
  return async (request) => {
    const path = new URL(request.url).pathname;
    const handler = request.method === "POST" ? rpcs.get(path) : undefined;
    if (handler === undefined) {
      return Response.json({ code: "unimplemented", message: `no rpc ${path.slice(1)}` }, { status: 404 });
    }
    try {
      // The rpc reads at most maxRpcBytes and answers a larger message RESOURCE_EXHAUSTED itself.
      return await handler(request);
    } catch (error) {
      console.error("rpc error", error);
      return Response.json({ code: "internal", message: "internal error" }, { status: 500 });
    }
  };
}
