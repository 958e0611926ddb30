/**
 * The commit and event envelope: what travels on the stream, the topic and into the archive.
 * Events are CloudEvents 1.0 (JSON), with Canon's attributes as CloudEvents extensions
 * (lowercase names, as the spec requires).
 */
import {
  integer,
  isObject,
  literal,
  onlyKeys,
  optionalText,
  type Shape,
  ShapeError,
  shape,
  text,
  within,
} from "./check.ts";
import { type ClaimCheck, checkClaimCheck, checkOut } from "./claim-check.ts";

/** One event as it travels: CloudEvents 1.0 attributes, then Canon's extensions. */
export interface EventEnvelope {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  /** The aggregate id. */
  subject: string;
  time: string;
  datacontenttype: "application/json";
  data: Record<string, unknown>;
  aggregatetype: string;
  /** Position in the aggregate's history, from 1. 0 for events outside it (CommandRejected). */
  aggregateversion: number;
  commitid: string;
  commandid: string;
  causationid: string;
  correlationid: string;
  schemaversion: number;
  /** Set when the event was too large to publish: `data` is empty, the whole event is in S3. */
  claimcheck?: ClaimCheck | undefined;
  /** The paths in `data` of fields sealed as personal data (shared/privacy/fields.ts); readers open them. */
  personaldata?: string[] | undefined;
  /** W3C Trace Context of the command that caused it (shared/telemetry/trace-context.ts). */
  traceparent?: string | undefined;
}

/** One stream record: the events one command produced for one aggregate, or its rejection. */
export interface Commit {
  kind: "events" | "rejection";
  commitId: string;
  commandId: string;
  service: string;
  bus: string;
  aggregateType: string;
  aggregateId: string;
  /** The aggregate version the command was decided against (0: a new aggregate). */
  expectedVersion: number;
  /**
   * The commit this one was decided after, when its handler decided it on state that included
   * a commit not yet known to have won (a pipelined commit): it wins only right after that
   * commit. Absent: decided on the state table's accepted history alone.
   */
  previousCommitId?: string | undefined;
  committedAt: string;
  /** W3C Trace Context: the command's trace, and the span that appended the commit. */
  traceparent?: string | undefined;
  /** 1..100 events; a rejection's one CommandRejected. */
  events: EventEnvelope[];
}

const idMax = 200;
/** A traceparent is 55 characters; later versions of the spec may append fields. */
const traceparentMax = 512;

const eventKeys = /* @__PURE__ */ new Set([
  "specversion",
  "id",
  "source",
  "type",
  "subject",
  "time",
  "datacontenttype",
  "data",
  "aggregatetype",
  "aggregateversion",
  "commitid",
  "commandid",
  "causationid",
  "correlationid",
  "schemaversion",
  "claimcheck",
  "personaldata",
  "traceparent",
]);

/** Checks a parsed event envelope; throws `ShapeError`. Unknown keys are dropped. */
export function checkEnvelope(value: unknown): EventEnvelope {
  if (!isObject(value)) throw new ShapeError([], "expected object");
  literal(value, "specversion", "1.0");
  text(value, "id", 1, idMax);
  text(value, "source", 1, 200);
  text(value, "type", 1, 200);
  text(value, "subject", 1, idMax);
  text(value, "time", 1, 40);
  literal(value, "datacontenttype", "application/json");
  if (!isObject(value.data)) throw new ShapeError(["data"], "expected record");
  text(value, "aggregatetype", 1, 100);
  integer(value, "aggregateversion", 0);
  text(value, "commitid", 1, idMax);
  text(value, "commandid", 1, idMax);
  text(value, "causationid", 1, idMax);
  text(value, "correlationid", 1, idMax);
  integer(value, "schemaversion", 1);
  if (value.claimcheck !== undefined) within(["claimcheck"], () => checkClaimCheck(value.claimcheck));
  const sealed = value.personaldata;
  if (
    sealed !== undefined &&
    !(Array.isArray(sealed) && sealed.length <= 100 && sealed.every((p) => typeof p === "string" && p.length > 0))
  )
    throw new ShapeError(["personaldata"], "expected up to 100 field paths");
  optionalText(value, "traceparent", 1, traceparentMax);
  return onlyKeys(value, eventKeys);
}

const commitKeys = /* @__PURE__ */ new Set([
  "kind",
  "commitId",
  "commandId",
  "service",
  "bus",
  "aggregateType",
  "aggregateId",
  "expectedVersion",
  "previousCommitId",
  "committedAt",
  "traceparent",
  "events",
]);

/**
 * Checks a parsed commit, and that its events belong to it: each names the commit and its
 * aggregate, an accepted commit's versions follow its expected version, and a rejection
 * carries exactly one event (at version 0). Throws `ShapeError`; unknown keys are dropped.
 */
export function checkCommit(value: unknown): Commit {
  if (!isObject(value)) throw new ShapeError([], "expected object");
  const kind = value.kind;
  if (kind !== "events" && kind !== "rejection") throw new ShapeError(["kind"], 'expected "events" or "rejection"');
  const commitId = text(value, "commitId", 1, idMax);
  text(value, "commandId", 1, idMax);
  text(value, "service", 1, 100);
  text(value, "bus", 1, 100);
  text(value, "aggregateType", 1, 100);
  const aggregateId = text(value, "aggregateId", 1, idMax);
  const expectedVersion = integer(value, "expectedVersion", 0);
  optionalText(value, "previousCommitId", 1, idMax);
  text(value, "committedAt", 1, 40);
  optionalText(value, "traceparent", 1, traceparentMax);
  const events = value.events;
  if (!Array.isArray(events)) throw new ShapeError(["events"], "expected array");
  if (events.length < 1 || events.length > 100) throw new ShapeError(["events"], "expected 1 to 100 events");
  let kept: EventEnvelope[] = events;
  for (let index = 0; index < events.length; index++) {
    let event: EventEnvelope;
    try {
      event = checkEnvelope(events[index]);
    } catch (error) {
      if (error instanceof ShapeError) error.path.unshift("events", index);
      throw error;
    }
    if (event !== events[index]) {
      if (kept === events) kept = events.slice();
      kept[index] = event;
    }
    const expected = kind === "events" ? expectedVersion + index + 1 : 0;
    if (event.aggregateversion !== expected)
      throw new ShapeError(["events", index, "aggregateversion"], `must be ${expected}`);
    if (event.subject !== aggregateId || event.commitid !== commitId)
      throw new ShapeError(["events", index], "subject and commitid must match the commit");
  }
  if (kind === "rejection" && events.length !== 1)
    throw new ShapeError(["events"], "a rejection carries exactly one CommandRejected event");
  const commit = onlyKeys<Commit>(value, commitKeys);
  // What was given is never changed: an event that lost unknown keys is a copy, so is its commit.
  return kept === events ? commit : { ...commit, events: kept };
}

/** The commit's shape (`checkCommit`), answering instead of throwing. */
export const commitSchema: Shape<Commit> = /* @__PURE__ */ shape(checkCommit);
/** The event envelope's shape (`checkEnvelope`), answering instead of throwing. */
export const eventEnvelopeSchema: Shape<EventEnvelope> = /* @__PURE__ */ shape(checkEnvelope);

/** Thrown when bytes on a stream or queue are not a valid commit or event. Never retried. */
export class MalformedMessageError extends Error {
  override name = "MalformedMessageError";
  readonly code = "malformed_message" as const;
}

/** A stream record too large for Kinesis: the commit is in S3, the record says where. */
interface CommitClaim {
  readonly kind: "claim";
  readonly commitId: string;
  readonly aggregateId: string;
  readonly claimCheck: ClaimCheck;
}

const commitClaimKeys = /* @__PURE__ */ new Set(["kind", "commitId", "aggregateId", "claimCheck"]);

function checkCommitClaim(value: unknown): CommitClaim {
  if (!isObject(value)) throw new ShapeError([], "expected object");
  literal(value, "kind", "claim");
  text(value, "commitId", 1, 200);
  text(value, "aggregateId", 1, 200);
  within(["claimCheck"], () => checkClaimCheck(value.claimCheck));
  for (const key in value) if (!commitClaimKeys.has(key)) throw new ShapeError([], `unrecognized key: "${key}"`);
  return value as unknown as CommitClaim;
}

/** Bytes as text, without copying them first (`Buffer.from(bytes)` would). */
function utf8(bytes: string | Uint8Array): string {
  if (typeof bytes === "string") return bytes;
  const view = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.toString("utf8");
}

/** Parses and validates a commit from its JSON bytes. */
export function parseCommit(bytes: string | Uint8Array): Commit {
  return parseJsonWith(checkCommit, bytes, "commit");
}

/** Parses a stream record into its commit, fetching it first if the record is a claim check. */
export async function readCommit(bytes: string | Uint8Array): Promise<Commit> {
  const text = utf8(bytes);
  if (!text.startsWith('{"kind":"claim"')) return parseCommit(text);
  const claim = parseJsonWith(checkCommitClaim, text, "commit claim check");
  const commit = parseCommit(await checkOut(claim.claimCheck));
  if (commit.commitId !== claim.commitId) throw new MalformedMessageError("claim check holds another commit");
  return commit;
}

/** The stream record that stands for a commit stored by claim check. */
export function commitClaimRecord(commit: Commit, claimCheck: ClaimCheck): string {
  return JSON.stringify({ kind: "claim", commitId: commit.commitId, aggregateId: commit.aggregateId, claimCheck });
}

/** Parses and validates an event envelope from its JSON bytes. */
export function parseEvent(bytes: string | Uint8Array): EventEnvelope {
  return parseJsonWith(checkEnvelope, bytes, "event");
}

/** Parses an event from a queue message, fetching it first if it travelled by claim check. */
export async function readEvent(bytes: string | Uint8Array): Promise<EventEnvelope> {
  const event = parseEvent(bytes);
  if (event.claimcheck === undefined) return event;
  const full = parseEvent(await checkOut(event.claimcheck));
  if (full.id !== event.id) throw new MalformedMessageError("claim check holds another event");
  return full;
}

function parseJsonWith<T>(check: (value: unknown) => T, bytes: string | Uint8Array, what: string): T {
  const text = utf8(bytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new MalformedMessageError(`${what} is not valid JSON`, { cause });
  }
  try {
    return check(json);
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    const where = error.path.length > 0 ? error.path.join(".") : "(root)";
    throw new MalformedMessageError(`${what} is invalid at ${where}: ${error.message}`);
  }
}

/** What a decider returns for an event: its type and data; the framework adds the envelope. */
export interface NewEvent {
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export interface CommitMetadata {
  readonly commandId: string;
  readonly attempt: number;
  readonly service: string;
  readonly bus: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly expectedVersion: number;
  /** The pipelined commit this one was decided after (see `Commit`). @default none */
  readonly previousCommitId?: string;
  readonly correlationId: string;
  readonly causationId: string;
  /** The command's trace context, carried by the commit and each of its events. @default none */
  readonly traceparent?: string;
  /** Injected: the framework's clock, so tests can fix it. */
  readonly now: Date;
}

/** Commit ids are derived from the command and attempt, event ids from the commit: retries are idempotent. */
export function commitIdFor(commandId: string, attempt: number): string {
  return `${commandId}.${attempt}`;
}

/** Wraps a decider's events into a commit with deterministic ids. */
export function buildCommit(kind: Commit["kind"], meta: CommitMetadata, events: readonly NewEvent[]): Commit {
  const commitId = commitIdFor(meta.commandId, meta.attempt);
  const time = meta.now.toISOString();
  return {
    kind,
    commitId,
    commandId: meta.commandId,
    service: meta.service,
    bus: meta.bus,
    aggregateType: meta.aggregateType,
    aggregateId: meta.aggregateId,
    expectedVersion: meta.expectedVersion,
    ...(meta.previousCommitId === undefined ? {} : { previousCommitId: meta.previousCommitId }),
    committedAt: time,
    ...(meta.traceparent === undefined ? {} : { traceparent: meta.traceparent }),
    events: events.map((event, index) => ({
      specversion: "1.0",
      id: `${commitId}.${index}`,
      source: `canon/${meta.bus}/${meta.service}`,
      type: event.type,
      subject: meta.aggregateId,
      time,
      datacontenttype: "application/json",
      data: event.data,
      aggregatetype: meta.aggregateType,
      aggregateversion: kind === "events" ? meta.expectedVersion + index + 1 : 0,
      commitid: commitId,
      commandid: meta.commandId,
      causationid: meta.causationId,
      correlationid: meta.correlationId,
      schemaversion: 1,
      ...(meta.traceparent === undefined ? {} : { traceparent: meta.traceparent }),
    })),
  };
}
