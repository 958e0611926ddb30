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

/** A request's trace: a span of its own, a child of the client's `traceparent` or the root of a new trace. */
export function requestTrace(header: string | undefined | null): RequestTrace & { readonly parentSpanId?: string } {
  const parent = parseTraceparent(header);
  const context = parent ? childContext(parent) : startTrace();
  return { context, startedAt: Date.now(), ...(parent === undefined ? {} : { parentSpanId: parent.spanId }) };
}

/** Records an answered request on the analytics bus; on Lambda, sends what is due (the sandbox freezes next). */
export async function recordRequest(
  trace: RequestTrace & { readonly parentSpanId?: string },
  request: { readonly method: string; readonly route: string; readonly status: number },
): Promise<void> {
  const emitter = telemetry();
  if (!emitter.enabled) return;
  emitter.emit({
    kind: "request",
    source: "api",
    traceId: trace.context.traceId,
    spanId: trace.context.spanId,
    ...(trace.parentSpanId === undefined ? {} : { parentSpanId: trace.parentSpanId }),
    request: { ...request, latencyMs: elapsedMs(trace.startedAt, Date.now()) },
  });
  if (process.env.CANON_BUNDLE === "lambda") await emitter.flushIfDue();
}

/** Hono middleware: the request's trace in `c.get("trace")`, its telemetry when it is answered. */
export const traced: MiddlewareHandler<{ Variables: { trace: RequestTrace } }> = async (c, next) => {
  const trace = requestTrace(c.req.header("traceparent"));
  c.set("trace", trace);
  await next();
  c.header("traceparent", formatTraceparent(trace.context));
  if (c.req.path === "/health") return;
  await recordRequest(trace, { method: c.req.method, route: c.req.routePath, status: c.res.status });
};

/** A command's journey (404 for a command the API never took, 400 for a malformed id). */
export async function readTrace(commandId: string): Promise<Answer> {
  if (!isPathSegment(commandId)) return { ok: false, status: 400, error: "malformed command id" };
  const journey = await readJourney(commandId);
  if (journey === undefined) return { ok: false, status: 404, error: `unknown command id "${commandId}"` };
  return { ok: true, status: 200, body: journey as unknown as Record<string, unknown> };
}
