/**
 * The envelope's checks (shared/events/envelope.ts, shared/domain/command-message.ts) accept and
 * refuse what the zod schemas they replaced did: those schemas are kept here, word for word, as
 * the reference, and fast-check mutates good commits, events and command messages field by field
 * (wrong types, empty, too long, out of range, missing, extra keys, broken version chains).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { checkCommandMessage, commandMessageSchema } from "../../shared/domain/command-message.ts";
import { ShapeError } from "../../shared/events/check.ts";
import {
  buildCommit,
  type Commit,
  checkCommit,
  checkEnvelope,
  MalformedMessageError,
  parseCommit,
  parseEvent,
} from "../../shared/events/envelope.ts";

// --- the zod schemas as they were (the reference) ---
const id = z.string().min(1).max(200);
const claimCheckSchema = z.strictObject({
  bucket: z.string().min(3).max(63),
  key: z.string().min(1).max(1024),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
const eventEnvelopeSchema = z.object({
  specversion: z.literal("1.0"),
  id,
  source: z.string().min(1).max(200),
  type: z.string().min(1).max(200),
  subject: id,
  time: z.string().min(1).max(40),
  datacontenttype: z.literal("application/json"),
  data: z.record(z.string(), z.unknown()),
  aggregatetype: z.string().min(1).max(100),
  aggregateversion: z.number().int().min(0),
  commitid: id,
  commandid: id,
  causationid: id,
  correlationid: id,
  schemaversion: z.number().int().min(1),
  claimcheck: claimCheckSchema.optional(),
});
const commitSchema = z
  .object({
    kind: z.enum(["events", "rejection"]),
    commitId: id,
    commandId: id,
    service: z.string().min(1).max(100),
    bus: z.string().min(1).max(100),
    aggregateType: z.string().min(1).max(100),
    aggregateId: id,
    expectedVersion: z.number().int().min(0),
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
const referenceCommandMessage = z.object({
  commandId: id,
  service: z.string().min(1).max(100),
  command: z.looseObject({ type: z.string().min(1).max(100) }),
  aggregateId: id,
  receivedAt: z.iso.datetime(),
  correlationId: id,
  causationId: id,
});

// --- values to mutate ---
function sampleCommit(events: number, kind: Commit["kind"] = "events"): Commit {
  const meta = {
    commandId: "cmd-1",
    attempt: 1,
    service: "accounts",
    bus: "core",
    aggregateType: "Account",
    aggregateId: "acct-1",
    expectedVersion: 4,
    correlationId: "cmd-1",
    causationId: "cmd-1",
    now: new Date(0),
  };
  return buildCommit(
    kind,
    meta,
    Array.from({ length: events }, (_, i) => ({
      type: "FundsDeposited",
      data: { accountId: "acct-1", amountCents: i },
    })),
  );
}

const claim = { bucket: "archive-bucket", key: "claims/events/e.json", bytes: 10, sha256: "a".repeat(64) };

/** Replacement values: each of a different kind, so every field meets ones it must refuse. */
const oddValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.constant(""),
  fc.constant("x".repeat(201)),
  fc.constant("x".repeat(41)),
  fc.constant("y".repeat(101)),
  fc.constant("1.0"),
  fc.constant("application/json"),
  fc.constant("events"),
  fc.constant("rejection"),
  fc.constant("2025-01-01T00:00:00Z"),
  fc.constant("2025-01-01T00:00:00+01:00"),
  fc.constant(-1),
  fc.constant(0),
  fc.constant(1.5),
  fc.constant(2 ** 60),
  fc.constant(5),
  fc.constant([]),
  fc.constant({}),
  fc.constant({ ...claim }),
  fc.constant({ ...claim, extra: 1 }),
  fc.constant({ ...claim, bytes: 0 }),
  fc.constant({ type: "" }),
  fc.constant({ type: "Deposit", amountCents: 1 }),
  fc.string({ maxLength: 5 }),
  fc.integer({ min: -3, max: 8 }),
);

/** A deep copy of `value` with the field at `path` replaced by `replacement` (or deleted when undefined). */
function mutate(value: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let at: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  const last = path.at(-1) as string | number;
  if (replacement === undefined) delete at[last];
  else at[last] = replacement;
  return copy;
}

function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== "object" || value === null) return [prefix];
  const own = Object.keys(value).map((k) => (Array.isArray(value) ? Number(k) : k));
  return [
    prefix,
    ...own.flatMap((k) => paths((value as Record<string | number, unknown>)[k], [...prefix, k])),
    [...prefix, "extraKey"],
  ];
}

function verdict(check: (v: unknown) => unknown, value: unknown): boolean {
  try {
    check(structuredClone(value));
    return true;
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    return false;
  }
}

function agree(reference: z.ZodType, check: (v: unknown) => unknown, good: unknown): void {
  const allPaths = paths(good).filter((p) => p.length > 0);
  fc.assert(
    fc.property(fc.constantFrom(...allPaths), oddValue, fc.constantFrom(...allPaths), oddValue, (p1, v1, p2, v2) => {
      const once = mutate(good, p1, v1);
      let twice: unknown;
      try {
        twice = mutate(once, p2, v2);
      } catch {
        twice = once; // the second path went away with the first change
      }
      for (const value of [once, twice]) {
        expect(verdict(check, value), JSON.stringify(value)).toBe(reference.safeParse(value).success);
      }
    }),
    { seed: 14, numRuns: 4000 },
  );
}

describe("the envelope's checks agree with the zod schemas they replaced", () => {
  it("on commits: good ones, and each field changed to every kind of value", () => {
    for (const good of [sampleCommit(1), sampleCommit(3), sampleCommit(1, "rejection")]) {
      expect(verdict(checkCommit, good)).toBe(true);
      agree(commitSchema, checkCommit, good);
    }
    const withClaim = sampleCommit(2);
    (withClaim.events[1] as { claimcheck?: unknown }).claimcheck = claim;
    agree(commitSchema, checkCommit, { ...withClaim, previousCommitId: "cmd-0.1" });
  });

  it("on events", () => {
    const [event] = sampleCommit(1).events;
    agree(eventEnvelopeSchema, checkEnvelope, event);
    agree(eventEnvelopeSchema, checkEnvelope, { ...event, claimcheck: claim });
  });

  it("on command messages", () => {
    const good = {
      commandId: "cmd-1",
      service: "accounts",
      command: { type: "Deposit", accountId: "a", amountCents: 5 },
      aggregateId: "a",
      receivedAt: "2026-12-02T01:00:00.123Z",
      correlationId: "cmd-1",
      causationId: "cmd-1",
    };
    agree(referenceCommandMessage, checkCommandMessage, good);
    for (const receivedAt of [
      "2024-02-29T00:00:00Z",
      "2023-02-29T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-01-01T00:00Z",
    ]) {
      expect(verdict(checkCommandMessage, { ...good, receivedAt }), receivedAt).toBe(
        referenceCommandMessage.safeParse({ ...good, receivedAt }).success,
      );
    }
  });

  it("drop keys the shape does not know, as zod's object did, and keep the command's own", () => {
    const commit = { ...sampleCommit(1), extra: 1 };
    (commit.events[0] as unknown as Record<string, unknown>).extra = 2;
    const given = structuredClone(commit);
    const checked = checkCommit(given);
    expect(checked).toEqual(commitSchema.parse(structuredClone(commit)));
    expect(checked).not.toHaveProperty("extra");
    expect(checked.events[0]).not.toHaveProperty("extra");
    expect(given).toEqual(commit); // what was given is left as it was
    const plain = structuredClone(sampleCommit(2));
    expect(checkCommit(plain)).toBe(plain); // and a commit with nothing to drop is not copied
    const message = commandMessageSchema.safeParse({
      commandId: "c",
      service: "s",
      command: { type: "Deposit", amountCents: 5 },
      aggregateId: "a",
      receivedAt: "2026-12-02T01:00:00Z",
      correlationId: "c",
      causationId: "c",
      extra: true,
    });
    expect(message).toEqual({
      success: true,
      data: {
        commandId: "c",
        service: "s",
        command: { type: "Deposit", amountCents: 5 },
        aggregateId: "a",
        receivedAt: "2026-12-02T01:00:00Z",
        correlationId: "c",
        causationId: "c",
      },
    });
  });

  it("name where a record is wrong", () => {
    const bad = structuredClone(sampleCommit(2)) as Commit;
    (bad.events[1] as { aggregateversion: number }).aggregateversion = 9;
    expect(() => parseCommit(JSON.stringify(bad))).toThrow(
      /commit is invalid at events\.1\.aggregateversion: must be 6/,
    );
    expect(() => parseEvent('{"specversion":"2.0"}')).toThrow(MalformedMessageError);
    expect(() => parseEvent('{"specversion":"2.0"}')).toThrow(/event is invalid at specversion/);
    expect(() => parseCommit("{")).toThrow(/commit is not valid JSON/);
    expect(commandMessageSchema.safeParse({ commandId: "c" })).toMatchObject({
      success: false,
      error: { issues: [{ path: ["service"] }] },
    });
  });
});
