/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` a command carries
 * from the client's request (or the API, which starts one) through its message, its commit, its
 * events and the commands a reactor causes, so every hop of its journey shares one trace id.
 *
 *   traceparent = "00-" trace id (32 hex) "-" parent span id (16 hex) "-" flags (2 hex)
 *
 * Span ids of the framework's hops are derived from what they stand for (`hopSpanId`), so a
 * retried or redelivered hop names the same span again: the journey index stays idempotent.
 */
import { createHash, randomBytes } from "node:crypto";

/** A position in a trace: its trace id, the current span, and the trace flags. */
export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  readonly spanId: string;
  /** 2 hex digits; "01" = sampled. */
  readonly flags: string;
}

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const zeroTrace = "0".repeat(32);
const zeroSpan = "0".repeat(16);

/**
 * Reads a `traceparent` header; undefined when absent or malformed (the spec says to start a new
 * trace then, never to fail the request). A later version's header is read by its first four
 * fields, as the spec asks; version "ff" is invalid.
 */
export function parseTraceparent(header: string | undefined | null): TraceContext | undefined {
  if (typeof header !== "string" || header.length > 512) return undefined;
  const match = traceparentPattern.exec(header.trim().toLowerCase());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (traceId === zeroTrace || spanId === zeroSpan) return undefined;
  return { traceId, spanId, flags };
}

/** The `traceparent` header for a context (version 00). */
export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.flags}`;
}

/** A new trace: a random trace id and root span id, sampled. */
export function startTrace(): TraceContext {
  return { traceId: randomHex(16, zeroTrace), spanId: randomHex(8, zeroSpan), flags: "01" };
}

/** The context of `header` if it is a valid traceparent, else a new trace. */
export function continueOrStart(header: string | undefined | null): TraceContext {
  return parseTraceparent(header) ?? startTrace();
}

/** The same trace, one span further (`spanId` given, or random). */
export function childContext(parent: TraceContext, spanId: string = randomHex(8, zeroSpan)): TraceContext {
  return { traceId: parent.traceId, spanId, flags: parent.flags };
}

/**
 * The span id of a framework hop, derived from the trace and what the hop is (e.g. the command
 * id, "decided", the attempt): the same hop always gets the same id.
 */
export function hopSpanId(traceId: string, ...parts: readonly (string | number)[]): string {
  const id = createHash("sha256")
    .update(`${traceId}\n${parts.join("\n")}`)
    .digest("hex")
    .slice(0, 16);
  return id === zeroSpan ? "0000000000000001" : id;
}

function randomHex(bytes: number, zero: string): string {
  const hex = randomBytes(bytes).toString("hex");
  return hex === zero ? `${hex.slice(0, -1)}1` : hex;
}
