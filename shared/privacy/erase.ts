/**
 * Erasing a subject (crypto-shredding): its data key is deleted and the erasure recorded in the
 * subject keys table (who, when, why), then — once every function's key cache has expired — a
 * `SubjectErased` commit goes on each bus, so projections blank what they derived. Everything
 * sealed for the subject reads as erased from the deletion on: the stream, the archive, the
 * queues, a warm-up, a rebuild. Nothing is rewritten: the archive stays immutable.
 *
 * Idempotent: erasing again keeps the first record and re-sends the very same commit (same ids,
 * same bytes), which arbitration sees as a duplicate.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient } from "../aws/clients.ts";
import { buildCommit, type Commit } from "../events/envelope.ts";
import { appendCommit } from "../handlers/commit-append.ts";
import { defaultKeyCacheTtlMs, privacyEnv } from "./env.ts";
import { subjectErasedType } from "./fields.ts";
import type { SubjectKeyItem } from "./keys.ts";

/** Where a bus's SubjectErased goes: its stream, and its archive bucket (claim checks). */
export interface EraseTarget {
  readonly bus: string;
  readonly streamName: string;
  readonly archiveBucket: string;
}

export interface EraseRequest {
  readonly keysTable: string;
  readonly subject: string;
  /** Who asks (an operator's name, an IAM principal): recorded with the erasure. */
  readonly by: string;
  /** Why (a ticket, a request id). @default none */
  readonly reason?: string;
  readonly buses: readonly EraseTarget[];
  /** Wait this long after the deletion before the SubjectErased goes out: the functions' key cache TTL. */
  readonly cacheTtlMs?: number;
}

export interface Erasure {
  readonly subject: string;
  readonly erasedAt: string;
  readonly erasedBy: string;
  readonly erasedFor?: string;
  /** The first erasure stands: true when this call found the subject erased already. */
  readonly already: boolean;
  readonly commitIds: readonly string[];
}

const subjectPattern = /^[^\s]{1,200}$/;

/** An erase request that cannot be carried out as asked (the caller's mistake, not the system's). */
export class InvalidErasureError extends Error {
  override name = "InvalidErasureError";
}

/** Deletes a subject's key, records who and when, and announces it on every bus. */
export async function eraseSubject(request: EraseRequest): Promise<Erasure> {
  const { subject } = request;
  if (!subjectPattern.test(subject))
    throw new InvalidErasureError(`subject id "${subject}" is not valid: 1 to 200 characters, no spaces`);
  if (request.by.trim() === "") throw new InvalidErasureError("an erasure must say who asks for it");
  const now = new Date().toISOString();
  const out = await dynamoClient().send(
    new UpdateCommand({
      TableName: request.keysTable,
      Key: { id: subject },
      UpdateExpression:
        "SET erasedAt = if_not_exists(erasedAt, :now), erasedBy = if_not_exists(erasedBy, :by)" +
        (request.reason === undefined ? "" : ", erasedFor = if_not_exists(erasedFor, :for)") +
        " REMOVE keyId, wrappedKey",
      ExpressionAttributeValues: {
        ":now": now,
        ":by": request.by,
        ...(request.reason === undefined ? {} : { ":for": request.reason }),
      },
      ReturnValues: "ALL_NEW",
    }),
  );
  const record = out.Attributes as SubjectKeyItem;
  const erasedAt = record.erasedAt as string;
  // Until every cache has let the key go, a reader may still open the subject's fields; a view
  // blanked before that could be filled again behind the erasure.
  const ttl = request.cacheTtlMs ?? defaultKeyCacheTtlMs;
  const waitMs = Date.parse(erasedAt) + ttl - Date.now();
  if (waitMs > 0) await sleep(waitMs);
  const commits = request.buses.map((target) => erasureCommit(target.bus, subject, erasedAt));
  await Promise.all(commits.map((commit, i) => appendCommit(request.buses[i] as EraseTarget, commit)));
  return {
    subject,
    erasedAt,
    erasedBy: record.erasedBy as string,
    ...(record.erasedFor === undefined ? {} : { erasedFor: record.erasedFor }),
    already: erasedAt !== now,
    commitIds: commits.map((c) => c.commitId),
  };
}

/** The SubjectErased commit of a bus: derived from the subject and its erasure alone, so a retry sends the same bytes. */
export function erasureCommit(bus: string, subject: string, erasedAt: string): Commit {
  const commandId = `erase-subject.${subject}`;
  return buildCommit(
    "events",
    {
      commandId,
      attempt: 1,
      service: "privacy",
      bus,
      aggregateType: "Subject",
      aggregateId: subject,
      expectedVersion: 0,
      correlationId: commandId,
      causationId: commandId,
      now: new Date(erasedAt),
    },
    [{ type: subjectErasedType, data: { subjectId: subject, erasedAt } }],
  );
}

/** The key cache TTL this process's environment sets (the erase waits it out). */
export function keyCacheTtlFromEnv(): number {
  const ttl = Number(process.env[privacyEnv.keyCacheTtlMs] ?? defaultKeyCacheTtlMs);
  return Number.isFinite(ttl) && ttl >= 0 ? ttl : defaultKeyCacheTtlMs;
}
