/**
 * The commit and event envelope: what travels on the stream, the topic and into the archive.
 * Events are CloudEvents 1.0 (JSON), with Canon's attributes as CloudEvents extensions
 * (lowercase names, as the spec requires).
 */
import { z } from "zod";
import { type ClaimCheck, checkOut, claimCheckSchema } from "./claim-check.ts";

const id = z.string().min(1).max(200);

export const eventEnvelopeSchema = z.object({
  specversion: z.literal("1.0"),
  id,
  source: z.string().min(1).max(200),
  type: z.string().min(1).max(200),
  subject: id,
  time: z.string().min(1).max(40),
  datacontenttype: z.literal("application/json"),
  data: z.record(z.string(), z.unknown()),
  aggregatetype: z.string().min(1).max(100),
  /** Position in the aggregate's history, from 1. 0 for events outside it (CommandRejected). */
  aggregateversion: z.number().int().min(0),
  commitid: id,
  commandid: id,
  causationid: id,
  correlationid: id,
  schemaversion: z.number().int().min(1),
  /** Set when the event was too large to publish: `data` is empty, the whole event is in S3. */
  claimcheck: claimCheckSchema.optional(),
});

export type EventEnvelope = z.infer<typeof eventEnvelopeSchema>;

export const commitSchema = z
  .object({
    kind: z.enum(["events", "rejection"]),
    commitId: id,
    commandId: id,
    service: z.string().min(1).max(100),
    bus: z.string().min(1).max(100),
    aggregateType: z.string().min(1).max(100),
    aggregateId: id,
    /** The aggregate version the command was decided against (0: a new aggregate). */
    expectedVersion: z.number().int().min(0),
    /**
     * The commit this one was decided after, when its handler decided it on state that included
     * a commit not yet known to have won (a pipelined commit): it wins only right after that
     * commit. Absent: decided on the state table's accepted history alone.
     */
    previousCommitId: id.optional(),
    committedAt: z.string().min(1).max(40),
    events: z.array(eventEnvelopeSchema).min(1).max(100),
  })
  .superRefine((commit, ctx) => {
    commit.events.forEach((event, index) => {
      const expected = commit.kind === "events" ? commit.expectedVersion + index + 1 : 0;
      if (event.aggregateversion !== expected) {
        ctx.addIssue({ code: "custom", path: ["events", index, "aggregateversion"], message: `must be ${expected}` });
      }
      if (event.subject !== commit.aggregateId || event.commitid !== commit.commitId) {
        ctx.addIssue({
          code: "custom",
          path: ["events", index],
          message: "subject and commitid must match the commit",
        });
      }
    });
    if (commit.kind === "rejection" && commit.events.length !== 1) {
      ctx.addIssue({
        code: "custom",
        path: ["events"],
        message: "a rejection carries exactly one CommandRejected event",
      });
    }
  });

export type Commit = z.infer<typeof commitSchema>;

/** Thrown when bytes on a stream or queue are not a valid commit or event. Never retried. */
export class MalformedMessageError extends Error {
  override name = "MalformedMessageError";
}

/** A stream record too large for Kinesis: the commit is in S3, the record says where. */
const commitClaimSchema = z.strictObject({
  kind: z.literal("claim"),
  commitId: z.string().min(1).max(200),
  aggregateId: z.string().min(1).max(200),
  claimCheck: claimCheckSchema,
});

/** Parses and validates a commit from its JSON bytes. */
export function parseCommit(bytes: string | Uint8Array): Commit {
  return parseJsonWith(commitSchema, bytes, "commit");
}

/** Parses a stream record into its commit, fetching it first if the record is a claim check. */
export async function readCommit(bytes: string | Uint8Array): Promise<Commit> {
  const text = typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8");
  if (!text.startsWith('{"kind":"claim"')) return parseCommit(text);
  const claim = parseJsonWith(commitClaimSchema, text, "commit claim check");
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
  return parseJsonWith(eventEnvelopeSchema, bytes, "event");
}

/** Parses an event from a queue message, fetching it first if it travelled by claim check. */
export async function readEvent(bytes: string | Uint8Array): Promise<EventEnvelope> {
  const event = parseEvent(bytes);
  if (event.claimcheck === undefined) return event;
  const full = parseEvent(await checkOut(event.claimcheck));
  if (full.id !== event.id) throw new MalformedMessageError("claim check holds another event");
  return full;
}

function parseJsonWith<T>(schema: z.ZodType<T>, bytes: string | Uint8Array, what: string): T {
  const text = typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new MalformedMessageError(`${what} is not valid JSON`, { cause });
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "(root)";
    throw new MalformedMessageError(`${what} is invalid at ${where}: ${issue?.message ?? "unknown"}`);
  }
  return result.data;
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
  /** The pipelined commit this one was decided after (see `commitSchema`). @default none */
  readonly previousCommitId?: string;
  readonly correlationId: string;
  readonly causationId: string;
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
    })),
  };
}
