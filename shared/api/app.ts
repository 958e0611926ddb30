/**
 * The HTTP API: the client's one entry point. The same Hono app runs behind API Gateway
 * (shared/entries/api.ts) and locally (shared/local-cloud/dev.ts).
 *
 *   POST /commands/{service}/{command}   → 202 { commandId }   (Idempotency-Key optional)
 *   GET  /commands/{commandId}           → the command's outcome
 *   GET  /commands/{commandId}/trace     → the command's journey, hop by hop (shared/telemetry/journey.ts)
 *   GET  /views/{service}/{view}/{key}   → a projection item
 *   GET  /health                         → 200 once ready
 *
 * The same over Connect and gRPC-Web (`POST /{package}.{Service}/{Method}`) is rpc-app.ts.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { functionLogger } from "../log.ts";
import {
  type Answer,
  type ApiOptions,
  maxCommandBytes,
  type RequestTrace,
  readOutcome,
  readView,
  submitCommand,
} from "./intake.ts";
import { readTrace, traced } from "./trace.ts";

const logger = /* @__PURE__ */ functionLogger("api");

/** What the API's handlers share per request: its trace. */
export type ApiEnv = { Variables: { trace: RequestTrace } };

export type { ApiOptions } from "./intake.ts";

/** Builds the API's Hono app. Resource names come from the environment (see shared/plan.ts). */
export function createApi(options: ApiOptions): Hono<ApiEnv> {
  const api = new Hono<ApiEnv>();

  // First: every request gets its trace context, and a telemetry record when it is answered.
  api.use(traced);
  api.onError((error, c) => {
    logger.error("api error", { error, route: c.req.routePath, traceId: c.get("trace")?.context.traceId });
    return c.json({ error: "internal error" }, 500);
  });
  api.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  const answer = (c: { json: (body: object, status: number) => Response }, result: Answer) =>
    result.ok
      ? c.json(result.body, result.status)
      : c.json({ error: result.error, ...(result.commandId ? { commandId: result.commandId } : {}) }, result.status);

  api.get("/health", (c) =>
    (options.isReady?.() ?? true) ? c.json({ status: "ok" }) : c.json({ status: "starting" }, 503),
  );

  api.post(
    "/commands/:service/:command",
    bodyLimit({
      maxSize: maxCommandBytes,
      onError: (c) => c.json({ error: `body larger than ${maxCommandBytes} bytes` }, 413),
    }),
    async (c) => {
      let payload: unknown;
      try {
        payload = JSON.parse(await c.req.text());
      } catch {
        return c.json({ error: "body is not valid JSON" }, 400);
      }
      const key = c.req.header("Idempotency-Key");
      const result = await submitCommand(
        options,
        c.req.param("service"),
        c.req.param("command"),
        payload,
        key,
        c.get("trace"),
      );
      if (result.ok) c.header("Location", `/commands/${String(result.body.commandId)}`);
      return answer(c, result);
    },
  );

  api.get("/commands/:commandId", async (c) => answer(c, await readOutcome(c.req.param("commandId"))));
  api.get("/commands/:commandId/trace", async (c) => answer(c, await readTrace(c.req.param("commandId"))));

  api.get("/views/:service/:view/:key", async (c) => {
    const { service, view, key } = c.req.param();
    return answer(c, await readView(options, service, view, key));
  });

  return api;
}
