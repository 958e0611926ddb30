/**
 * Arbitration: any interleaving of commits, duplicated, batched and retried however the
 * stream and the relay deliver them, yields one history per aggregate that every reader
 * agrees on (property tests with fast-check).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AggregateHead,
  acceptedHistory,
  arbiter,
  arbitrate,
  arbitrateRun,
} from "../../shared/events/arbitrate.ts";
import { buildCommit, type Commit } from "../../shared/events/envelope.ts";

function commit(
  aggregateId: string,
  commandId: string,
  expectedVersion: number,
  events = 1,
  kind: Commit["kind"] = "events",
  previousCommitId?: string,
): Commit {
  return buildCommit(
    kind,
    {
      commandId,
      attempt: 1,
      previousCommitId,
      service: "s",
      bus: "core",
      aggregateType: "T",
      aggregateId,
      expectedVersion,
      correlationId: commandId,
      causationId: commandId,
      now: new Date(0),
    },
    Array.from({ length: kind === "rejection" ? 1 : events }, (_, i) => ({ type: "Happened", data: { i } })),
  );
}

/**
 * A stream as concurrent writers produce it: each commit decided against a version some
 * reader had seen, so never beyond the aggregate's head at the time it is appended (state is
 * derived from the stream); some commits appended again later (a handler resuming).
 */
const streamArbitrary = fc
  .array(
    fc.record({
      aggregate: fc.constantFrom("a", "b", "c"),
      staleness: fc.nat({ max: 3 }),
      events: fc.integer({ min: 1, max: 3 }),
      rejection: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      duplicateOf: fc.option(fc.nat(), { nil: undefined }),
    }),
    { maxLength: 60 },
  )
  .map((specs) => {
    const commits: Commit[] = [];
    let heads = new Map<string, AggregateHead>();
    specs.forEach((spec, i) => {
      const earlier =
        spec.duplicateOf === undefined || commits.length === 0 ? undefined : commits[spec.duplicateOf % commits.length];
      const head = heads.get(`T#${spec.aggregate}`)?.version ?? 0;
      const next =
        earlier ??
        commit(
          spec.aggregate,
          `cmd-${i}`,
          Math.max(0, head - spec.staleness),
          spec.events,
          spec.rejection ? "rejection" : "events",
        );
      commits.push(next);
      heads = arbitrateRun(heads, [next]).heads;
    });
    return commits;
  });

function acceptedEventIds(commits: readonly Commit[]): string[] {
  return acceptedHistory(commits)
    .filter((c) => c.kind === "events")
    .flatMap((c) => c.events.map((e) => e.id));
}

describe("arbitrate", () => {
  it("refuses a commit decided against a version the aggregate has not reached", () => {
    expect(arbitrate(undefined, commit("a", "future", 2))).toEqual({ verdict: "conflict", currentVersion: 0 });
  });

  it("accepts the first commit at a version and refuses the next one for it", () => {
    const first = commit("a", "one", 0);
    const second = commit("a", "two", 0);
    const accepted = arbitrate(undefined, first);
    expect(accepted).toEqual({ verdict: "accepted", head: { version: 1, lastCommitId: first.commitId } });
    const head = (accepted as { head: AggregateHead }).head;
    expect(arbitrate(head, second)).toEqual({ verdict: "conflict", currentVersion: 1 });
    expect(arbitrate(head, first)).toEqual({ verdict: "duplicate" });
    expect(arbitrate(head, commit("a", "rej", 0, 1, "rejection"))).toEqual({ verdict: "unversioned" });
  });

  it("gives every aggregate one contiguous history (versions 1..n, each commit on the one before)", () => {
    fc.assert(
      fc.property(streamArbitrary, (stream) => {
        const versions = new Map<string, number>();
        const seen = new Set<string>();
        for (const c of acceptedHistory(stream)) {
          if (c.kind === "rejection") continue;
          expect(seen.has(c.commitId)).toBe(false);
          seen.add(c.commitId);
          const before = versions.get(c.aggregateId) ?? 0;
          expect(c.expectedVersion).toBe(before);
          expect(c.events.map((e) => e.aggregateversion)).toEqual(c.events.map((_, i) => before + i + 1));
          versions.set(c.aggregateId, before + c.events.length);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("is unmoved by duplicated deliveries of any commit", () => {
    fc.assert(
      fc.property(streamArbitrary, fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 10 }), (stream, copies) => {
        const noisy = [...stream];
        for (const [from, to] of copies) {
          if (stream.length === 0) break;
          const original = stream[from % stream.length] as Commit;
          const at = Math.max(noisy.indexOf(original) + 1, to % (noisy.length + 1));
          noisy.splice(at, 0, original);
        }
        expect(acceptedEventIds(noisy)).toEqual(acceptedEventIds(stream));
      }),
      { numRuns: 300 },
    );
  });

  it("reaches the same verdicts whatever the batch boundaries (relay, replay and tests agree)", () => {
    fc.assert(
      fc.property(streamArbitrary, fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1 }), (stream, sizes) => {
        const whole = arbitrateRun(new Map(), stream).verdicts;
        let heads = new Map<string, AggregateHead>();
        const batched = [];
        for (let i = 0, b = 0; i < stream.length; b++) {
          const size = sizes[b % sizes.length] as number;
          const run = arbitrateRun(heads, stream.slice(i, i + size));
          batched.push(...run.verdicts);
          heads = run.heads;
          i += size;
        }
        expect(batched).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it("publishes exactly the accepted events, once each after dedup, across relay crashes and retries", () => {
    fc.assert(
      fc.property(
        streamArbitrary,
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.constantFrom("ok", "crash-before-persist", "crash-after-persist"), { minLength: 1 }),
        (stream, batchSize, fates) => {
          // The relay's control flow: arbitrate a batch from the persisted heads, publish, persist
          // heads, then advance the checkpoint. A crash repeats the batch from the checkpoint.
          let persisted = new Map<string, AggregateHead>();
          const published: string[] = [];
          let checkpoint = 0;
          let attempt = 0;
          while (checkpoint < stream.length) {
            const batch = stream.slice(checkpoint, checkpoint + batchSize);
            const run = arbitrateRun(persisted, batch);
            batch.forEach((c, i) => {
              const verdict = run.verdicts[i]?.verdict;
              if (verdict !== "conflict") published.push(...c.events.map((e) => e.id));
            });
            const fate = fates[attempt++ % fates.length];
            if (fate === "crash-before-persist" && attempt < 50) continue;
            persisted = run.heads;
            if (fate === "crash-after-persist" && attempt < 50) continue;
            checkpoint += batch.length;
          }
          const accepted = new Set(acceptedHistory(stream).flatMap((c) => c.events.map((e) => e.id)));
          expect(new Set(published)).toEqual(accepted);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses a pipelined commit whose predecessor is not the head, whatever its version", () => {
    const mine = commit("a", "mine", 0);
    const theirs = commit("a", "theirs", 0);
    const next = commit("a", "next", 1, 1, "events", mine.commitId);
    expect(acceptedHistory([theirs, mine, next]).map((c) => c.commitId)).toEqual([theirs.commitId]);
    expect(acceptedHistory([mine, next]).map((c) => c.commitId)).toEqual([mine.commitId, next.commitId]);
  });

  it("accepts a pipelined commit only on the very history it was decided on (any interleaving of writers)", () => {
    // Writers read the accepted history (possibly a stale prefix of it), then append a chain of
    // commits: the first decided on what they read, each next one on that plus the commits
    // before it in the chain (named as its predecessor). Every commit remembers the history
    // it was decided on; an accepted commit's must be exactly the accepted history before it.
    const step = fc.record({
      writer: fc.nat({ max: 2 }),
      action: fc.constantFrom("read", "append", "append", "append"),
      staleness: fc.nat({ max: 2 }),
      events: fc.integer({ min: 1, max: 2 }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const stream: Commit[] = [];
        const basis = new Map<string, string[]>();
        const writers = new Map<number, { read: string[]; version: number; chain: Commit[] }>();
        const run = arbiter();
        const accepted: Commit[] = [];
        steps.forEach((s, i) => {
          if (s.action === "read") {
            const seen = accepted.slice(0, Math.max(0, accepted.length - s.staleness));
            const version = seen.reduce((v, c) => v + c.events.length, 0);
            writers.set(s.writer, { read: seen.map((c) => c.commitId), version, chain: [] });
            return;
          }
          const writer = writers.get(s.writer);
          if (writer === undefined) return;
          const previous = writer.chain.at(-1);
          const version = writer.version + writer.chain.reduce((v, c) => v + c.events.length, 0);
          const next = commit("a", `w${s.writer}-${i}`, version, s.events, "events", previous?.commitId);
          basis.set(next.commitId, [...writer.read, ...writer.chain.map((c) => c.commitId)]);
          writer.chain.push(next);
          stream.push(next);
          if (run.judge(next).verdict === "accepted") accepted.push(next);
        });
        const history: string[] = [];
        for (const c of acceptedHistory(stream)) {
          expect(basis.get(c.commitId)).toEqual(history);
          history.push(c.commitId);
        }
        expect(history).toEqual(accepted.map((c) => c.commitId));
      }),
      { numRuns: 500 },
    );
  });
});
