/**
 * The API's part in tracing: every request continues the client's W3C `traceparent` (or starts a
 * trace) in a span of its own, is answered with that span's `traceparent`, and leaves a "request" record on the analytics bus (route
 * pattern, status, latency); and `GET /commands/{commandId}/trace` answers a command's journey.
 */
import type { MiddlewareHandler } from "hono";
import { telemetry } from "../telemetry/emitter.ts";
import { readJourney } from "../telemetry/journey.ts";
import { elapsedMs } from "../telemetry/records.ts";
import { childContext, formatTraceparent, parseTraceparent, startTrace } from "../telemetry/trace-context.ts";
import { type Answer, isPathSegment, type RequestTrace } from "./intake.ts";

/** Hono middleware: the request's trace in `c.get("trace")`, its telemetry when it is answered. */
export const traced: MiddlewareHandler<{ Variables: { trace: RequestTrace } }> = async (c, next) => {
  const parent = parseTraceparent(c.req.header("traceparent"));
  // The request's own span: a child of the client's, or the root of a new trace.
  const trace: RequestTrace = { context: parent ? childContext(parent) : startTrace(), startedAt: Date.now() };
  c.set("trace", trace);
  await next();
  c.header("traceparent", formatTraceparent(trace.context));
  const emitter = telemetry();
  if (!emitter.enabled || c.req.path === "/health") return;
  emitter.emit({
    kind: "request",
    source: "api",
    traceId: trace.context.traceId,
    spanId: trace.context.spanId,
    ...(parent === undefined ? {} : { parentSpanId: parent.spanId }),
    request: {
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      latencyMs: elapsedMs(trace.startedAt, Date.now()),
    },
  });
  // On Lambda the sandbox freezes after the answer: what is due goes out now.
  if (process.env.CANON_BUNDLE === "lambda") await emitter.flushIfDue();
};

/** A command's journey (404 for a command the API never took, 400 for a malformed id). */
export async function readTrace(commandId: string): Promise<Answer> {
  if (!isPathSegment(commandId)) return { ok: false, status: 400, error: "malformed command id" };
  const journey = await readJourney(commandId);
  if (journey === undefined) return { ok: false, status: 404, error: `unknown command id "${commandId}"` };
  return { ok: true, status: 200, body: journey as unknown as Record<string, unknown> };
}
