/** The command handler's wait for its commit: when it looks, and how it learns the pipeline's pace. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { acceptedHistory, arbitrateRun } from "../../shared/events/arbitrate.ts";
import { buildCommit, type Commit } from "../../shared/events/envelope.ts";
import {
  commitLookSchedule,
  judgeChain,
  judgeChainByHead,
  learnCommitVisibility,
  markersToRead,
} from "../../shared/handlers/commit-wait.ts";

describe("the wait for a commit to show in the service's state", () => {
  it("looks first at about three quarters of the typical time, then every quarter of it, within bounds", () => {
    expect(commitLookSchedule(1_000)).toEqual({ firstMs: 750, everyMs: 200 });
    expect(commitLookSchedule(400)).toEqual({ firstMs: 300, everyMs: 100 });
    expect(commitLookSchedule(0)).toEqual({ firstMs: 10, everyMs: 20 });
    expect(commitLookSchedule(60_000)).toEqual({ firstMs: 2_000, everyMs: 200 });
  });

  it("learns the pipeline's pace from what it observes, and one outlier does not swamp it", () => {
    let typical = 250;
    for (let i = 0; i < 30; i++) typical = learnCommitVisibility(typical, 1_200);
    expect(typical).toBeCloseTo(1_200, 0);
    expect(learnCommitVisibility(typical, 600_000)).toBeLessThan(2_500);
    expect(learnCommitVisibility(typical, -5)).toBeGreaterThan(800);
  });
});

/**
 * Judging a chain from one look at the state: a random stream (competing writers, then the
 * batch's pipelined chain decided on some version), arbitrated; the state projection seen at
 * any point of applying the accepted history (markers precede the state, so markers of events
 * not applied yet may already be there). Whatever the look sees, a fate it gives is the true
 * one, "accepted" only once the state shows all of the commit's events; and once the state has
 * everything, every commit of the chain has its fate.
 */
describe("judging a batch's chain from its aggregate's state", () => {
  const commit = (commandId: string, expectedVersion: number, events: number, previousCommitId?: string): Commit =>
    buildCommit(
      "events",
      {
        commandId,
        attempt: 1,
        previousCommitId,
        service: "s",
        bus: "core",
        aggregateType: "T",
        aggregateId: "a",
        expectedVersion,
        correlationId: commandId,
        causationId: commandId,
        now: new Date(0),
      },
      Array.from({ length: events }, (_, i) => ({ type: "Happened", data: { i } })),
    );

  const scenario = fc.record({
    before: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 4 }),
    staleness: fc.nat({ max: 3 }),
    chain: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 4 }),
    rivals: fc.array(fc.record({ at: fc.nat({ max: 6 }), events: fc.integer({ min: 1, max: 3 }) }), { maxLength: 3 }),
    /** How many accepted events the state projection has still to apply (the batch's are near the end). */
    behind: fc.nat({ max: 12 }),
    markersAhead: fc.nat({ max: 4 }),
  });

  it("gives only true fates, and settles every commit once the state has it all", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        // Writers before the batch: an accepted history of some versions.
        const stream: Commit[] = [];
        let version = 0;
        s.before.forEach((events, i) => {
          stream.push(commit(`before-${i}`, version, events));
          version += events;
        });
        // The batch decided its chain on a version it read (maybe stale), each commit naming the one before.
        const base = Math.max(0, version - s.staleness);
        const chain: Commit[] = [];
        let next = base;
        s.chain.forEach((events, i) => {
          chain.push(commit(`mine-${i}`, next, events, chain.at(-1)?.commitId));
          next += events;
        });
        // Rivals decided on the latest version they could see, appended among the chain's commits.
        const appended: Commit[] = [];
        const rivals = [...s.rivals].sort((a, b) => a.at - b.at);
        let seen = acceptedHistory(stream).reduce((v, c) => v + c.events.length, 0);
        for (let i = 0; i <= chain.length; i++) {
          for (const rival of rivals.filter((r) => Math.min(r.at, chain.length) === i)) {
            const c = commit(`rival-${appended.length}`, seen, rival.events);
            appended.push(c);
            seen = acceptedHistory([...stream, ...appended]).reduce((v, x) => v + x.events.length, 0);
          }
          const mine = chain[i];
          if (mine !== undefined) appended.push(mine);
          seen = acceptedHistory([...stream, ...appended]).reduce((v, x) => v + x.events.length, 0);
        }
        const accepted = acceptedHistory([...stream, ...appended]);
        const won = new Set(accepted.map((c) => c.commitId));
        // The accepted events in order, each with its commit.
        const events = accepted.flatMap((c) => c.events.map(() => c.commitId));
        const applied = Math.max(0, events.length - s.behind);
        const state = applied === 0 ? undefined : { version: applied, lastCommitId: events[applied - 1] };
        const markerCount = Math.min(events.length, applied + s.markersAhead);
        const markers = new Set(events.slice(0, markerCount));

        const check = (at: typeof state, written: ReadonlySet<string>) => {
          const fates = new Map<string, "accepted" | "lost" | "pending">();
          const mineChain = { aggregateId: "a", commits: chain };
          const asked = new Set(markersToRead(mineChain, at, fates).map((c) => c.commitId));
          // The look reads exactly the markers it asked for.
          const read = new Set([...written].filter((id) => asked.has(id)));
          const settled = judgeChain(mineChain, at, read, fates);
          for (const c of chain) {
            const fate = fates.get(c.commitId);
            if (fate === "lost") expect(won.has(c.commitId)).toBe(false);
            if (fate === "accepted") {
              expect(won.has(c.commitId)).toBe(true);
              const end = accepted.slice(0, accepted.indexOf(c) + 1).reduce((v, x) => v + x.events.length, 0);
              expect(at?.version ?? 0).toBeGreaterThanOrEqual(end);
            }
          }
          return { settled, fates };
        };
        check(state, markers);

        // The arbiter's persisted head, after any prefix of the stream: a fate it gives is the true one.
        const all_ = [...stream, ...appended];
        const mineChain = { aggregateId: "a", commits: chain };
        for (let cut = 0; cut <= all_.length; cut++) {
          const head = arbitrateRun(new Map(), all_.slice(0, cut)).heads.get("T#a");
          const fates = new Map<string, "accepted" | "lost" | "pending">();
          const verdict = judgeChainByHead(mineChain, head, fates);
          for (const c of chain) {
            const fate = fates.get(c.commitId);
            if (fate !== undefined) expect(fate, `cut ${cut}`).toBe(won.has(c.commitId) ? "accepted" : "lost");
          }
          if (verdict === "settled") expect(fates.size).toBe(chain.length);
          // Once the arbiter has judged the whole stream, the head is never still waiting.
          if (cut === all_.length) expect(verdict).not.toBe("open");
        }
        // Everything applied: every commit is judged.
        const all = events.length === 0 ? undefined : { version: events.length, lastCommitId: events.at(-1) };
        const final = check(all, new Set(events));
        expect(final.settled).toBe(true);
        for (const c of chain) expect(final.fates.get(c.commitId)).toBe(won.has(c.commitId) ? "accepted" : "lost");
      }),
      { numRuns: 2_000 },
    );
  });

  it("settles a chain from the arbiter's head: named, not reached, moved past, or taken from under a pipelined commit", () => {
    const first = commit("one", 4, 1);
    const second = commit("two", 5, 2, first.commitId);
    const third = commit("three", 7, 1, second.commitId);
    const chain = { aggregateId: "a", commits: [first, second, third] };
    const fates = () => new Map<string, "accepted" | "lost" | "pending">();
    // Not judged yet: the head is at (or before) the first commit's version.
    expect(judgeChainByHead(chain, { version: 4, lastCommitId: "someone" }, fates())).toBe("open");
    expect(judgeChainByHead(chain, undefined, fates())).toBe("open");
    // The head names the second: it and the first won; the third is next.
    const partway = fates();
    expect(judgeChainByHead(chain, { version: 7, lastCommitId: second.commitId }, partway)).toBe("open");
    expect([...partway.values()]).toEqual(["accepted", "accepted"]);
    // The head names the last: all won.
    const done = fates();
    expect(judgeChainByHead(chain, { version: 8, lastCommitId: third.commitId }, done)).toBe("settled");
    expect([...done.values()]).toEqual(["accepted", "accepted", "accepted"]);
    // Another commit made the version the second was pipelined on: the second and third lost.
    const taken = fates();
    taken.set(first.commitId, "accepted");
    expect(judgeChainByHead(chain, { version: 7, lastCommitId: "rival" }, taken)).toBe("ask-state");
    const resumed = { aggregateId: "a", commits: [second] };
    const lost = fates();
    expect(judgeChainByHead(resumed, { version: 5, lastCommitId: "rival" }, lost)).toBe("settled");
    expect(lost.get(second.commitId)).toBe("lost");
    // Moved past without naming the chain: only the state's markers can tell.
    expect(judgeChainByHead(chain, { version: 9, lastCommitId: "later" }, fates())).toBe("ask-state");
  });

  it("reads no marker when the state names the chain's commit that made its version", () => {
    const first = commit("one", 4, 1);
    const second = commit("two", 5, 2, first.commitId);
    const third = commit("three", 7, 1, second.commitId);
    const chain = { aggregateId: "a", commits: [first, second, third] };
    const fates = new Map<string, "accepted" | "lost" | "pending">();
    const partway = { version: 7, lastCommitId: second.commitId };
    expect(markersToRead(chain, partway, fates)).toEqual([]);
    expect(judgeChain(chain, partway, new Set(), fates)).toBe(false);
    expect([...fates]).toEqual([
      [first.commitId, "accepted"],
      [second.commitId, "accepted"],
    ]);
    // Half of a commit's events shown: not yet accepted (read-your-writes).
    const half = new Map<string, "accepted" | "lost" | "pending">();
    expect(judgeChain(chain, { version: 6, lastCommitId: second.commitId }, new Set(), half)).toBe(false);
    expect(half.get(second.commitId)).toBeUndefined();
  });
});
