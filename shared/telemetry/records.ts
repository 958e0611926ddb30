/**
 * The telemetry records of the analytics bus (events/proto/canon/telemetry/v1/telemetry.proto),
 * as plain objects, and their stream bytes: the Protobuf JSON mapping `toJsonString` writes
 * (camelCase, default values left out, 64-bit integers as strings), written by hand so that a
 * Lambda bundle carries no Protobuf runtime for it (a unit test holds the two to the same bytes).
 */

/** The kinds of record, as the contract names them. */
export type TelemetryKind = "request" | "span" | "outcome" | "apply" | "park" | "dead_letter" | "dropped";

/** The hops of a command's journey, in the order they happen. */
export const hopNames = ["accepted", "queued", "decided", "appended", "relayed", "applied", "reacted"] as const;
export type HopName = (typeof hopNames)[number];

export interface RequestDetail {
  readonly method: string;
  readonly route: string;
  readonly status: number;
  readonly latencyMs: number;
}

export interface SpanDetail {
  readonly name: HopName;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly subscriber?: string;
}

export interface OutcomeDetail {
  readonly command: string;
  readonly status: string;
  readonly attempts: number;
  readonly queuedMs?: number;
  readonly decidedMs?: number;
  readonly appendedMs?: number;
  readonly settledMs?: number;
}

export interface ApplyDetail {
  readonly subscriber: string;
  readonly eventType: string;
  readonly aggregateVersion: number;
  readonly lagMs: number;
}

export interface ParkDetail {
  readonly subscriber: string;
  readonly eventId: string;
  readonly reason: string;
}

export interface DeadLetterDetail {
  readonly queue: string;
  readonly reason: string;
}

/** What every record says, whatever its kind. */
export interface RecordHeader {
  readonly at?: string;
  readonly source: string;
  readonly traceId?: string;
  readonly spanId?: string;
  readonly parentSpanId?: string;
  readonly commandId?: string;
  readonly correlationId?: string;
  readonly aggregateId?: string;
}

/** One record of the analytics bus. */
export type TelemetryRecord = RecordHeader &
  (
    | { readonly kind: "request"; readonly request: RequestDetail }
    | { readonly kind: "span"; readonly span: SpanDetail }
    | { readonly kind: "outcome"; readonly outcome: OutcomeDetail }
    | { readonly kind: "apply"; readonly apply: ApplyDetail }
    | { readonly kind: "park"; readonly park: ParkDetail }
    | { readonly kind: "dead_letter"; readonly deadLetter: DeadLetterDetail }
    | { readonly kind: "dropped"; readonly dropped: { readonly count: number } }
  );

const headerFields = ["source", "traceId", "spanId", "parentSpanId", "commandId", "correlationId", "aggregateId"];
const details = ["request", "span", "outcome", "apply", "park", "deadLetter", "dropped"] as const;
/** uint64 fields: strings in Protobuf JSON. */
const longFields = new Set(["aggregateVersion", "count"]);

/**
 * The record's stream bytes, as `toJsonString(TelemetryRecordSchema, …)` writes them: fields in
 * the contract's order, empty strings and zeros left out. `at` defaults to `now`.
 */
export function recordJson(record: TelemetryRecord, now: string): string {
  const out: Record<string, unknown> = { kind: record.kind, at: record.at ?? now };
  const fields = record as unknown as Record<string, unknown>;
  for (const name of headerFields) {
    const value = fields[name];
    if (typeof value === "string" && value !== "") out[name] = value;
  }
  for (const name of details) {
    const detail = fields[name];
    if (detail !== undefined) {
      out[name] = detailJson(detail as Record<string, unknown>);
      break;
    }
  }
  return JSON.stringify(out);
}

function detailJson(detail: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(detail)) {
    if (value === undefined || value === "" || value === 0) continue;
    if (typeof value === "number") {
      if (!Number.isFinite(value)) continue;
      out[name] = longFields.has(name) ? String(Math.trunc(value)) : value;
    } else out[name] = value;
  }
  return out;
}

/** Milliseconds between two instants, to a tenth of a millisecond (never negative: clocks differ by host). */
export function elapsedMs(from: number, to: number): number {
  return Math.max(0, Math.round((to - from) * 10) / 10);
}
