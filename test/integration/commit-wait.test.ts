/**
 * The command handler's commit wait over the wire (shared/handlers/commit-wait.ts): the batches
 * an instance has in hand wait together, one look for all of them, yet each learns only its own
 * commits' fates, when its own aggregates' state shows them. The state table is written here as
 * the state projection writes it: markers first, then the state naming the commit that made its
 * version.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { beforeAll, describe, expect, it } from "vitest";
import { batchPutItems } from "../../shared/aws/batch.ts";
import { createTableIfMissing } from "../../shared/aws/tables.ts";
import { buildCommit, type Commit } from "../../shared/events/envelope.ts";
import { commitMarkerKey, stateKey } from "../../shared/handlers/aggregate-state.ts";
import { awaitCommits } from "../../shared/handlers/commit-wait.ts";
import { useLocalCloud } from "../support/system.ts";

useLocalCloud("commit-wait");
const table = "commit-wait-state";

beforeAll(async () => {
  await createTableIfMissing(table);
});

function commit(aggregateId: string, commandId: string, expectedVersion: number, events = 1, previous?: Commit) {
  return buildCommit(
    "events",
    {
      commandId,
      attempt: 1,
      previousCommitId: previous?.commitId,
      service: "s",
      bus: "core",
      aggregateType: "T",
      aggregateId,
      expectedVersion,
      correlationId: commandId,
      causationId: commandId,
      now: new Date(0),
    },
    Array.from({ length: events }, (_, i) => ({ type: "Happened", data: { i } })),
  );
}

/** What the state projection writes once it has applied these accepted commits of an aggregate. */
async function project(aggregateId: string, accepted: readonly Commit[]): Promise<void> {
  const last = accepted.at(-1) as Commit;
  const version = last.expectedVersion + last.events.length;
  await batchPutItems(
    table,
    accepted.map((c) => ({ id: commitMarkerKey(c.commitId), version: c.expectedVersion + c.events.length })),
  );
  await batchPutItems(table, [{ id: stateKey(aggregateId), version, lastCommitId: last.commitId, state: {} }]);
}

describe("batches of one instance waiting for their commits together", () => {
  it("each gets its own fates: a chain that won, one that lost, one still pending at its deadline", async () => {
    const run = Date.now().toString(36);
    // Batch 1: a chain of two pipelined commits on one aggregate, and a lone commit on another.
    const first = commit(`a-${run}`, `one-${run}`, 0, 2);
    const second = commit(`a-${run}`, `two-${run}`, 2, 1, first);
    const alone = commit(`b-${run}`, `three-${run}`, 0);
    // Batch 2: a commit that a rival beat to its version, and the one pipelined after it.
    const beaten = commit(`c-${run}`, `four-${run}`, 0);
    const after = commit(`c-${run}`, `five-${run}`, 1, 1, beaten);
    const rival = commit(`c-${run}`, `rival-${run}`, 0, 3);
    // Batch 3: nothing will show for it.
    const unseen = commit(`d-${run}`, `six-${run}`, 0);

    const batch1 = awaitCommits(
      table,
      [
        { aggregateId: `a-${run}`, commits: [first, second] },
        { aggregateId: `b-${run}`, commits: [alone] },
      ],
      10_000,
    );
    const batch2 = awaitCommits(table, [{ aggregateId: `c-${run}`, commits: [beaten, after] }], 10_000);
    const batch3 = awaitCommits(table, [{ aggregateId: `d-${run}`, commits: [unseen] }], 1_500);

    // The projection gets to them at different moments; the first of a's commits shows alone first.
    await sleep(150);
    await project(`a-${run}`, [first]);
    await project(`c-${run}`, [rival]);
    await sleep(300);
    await project(`a-${run}`, [first, second]);
    await sleep(300);
    await project(`b-${run}`, [alone]);

    expect(Object.fromEntries(await batch1)).toEqual({
      [first.commitId]: "accepted",
      [second.commitId]: "accepted",
      [alone.commitId]: "accepted",
    });
    expect(Object.fromEntries(await batch2)).toEqual({ [beaten.commitId]: "lost", [after.commitId]: "lost" });
    expect(Object.fromEntries(await batch3)).toEqual({ [unseen.commitId]: "pending" });
  });

  it("a commit whose events show only in part is not accepted until they all do (read-your-writes)", async () => {
    const run = Date.now().toString(36);
    const big = commit(`e-${run}`, `seven-${run}`, 0, 3);
    const waiting = awaitCommits(table, [{ aggregateId: `e-${run}`, commits: [big] }], 10_000);
    let settled = false;
    void waiting.then(() => (settled = true));
    // Two of its three events applied: the state names it, at version 2.
    await batchPutItems(table, [{ id: commitMarkerKey(big.commitId), version: 1 }]);
    await batchPutItems(table, [{ id: stateKey(`e-${run}`), version: 2, lastCommitId: big.commitId, state: {} }]);
    await sleep(800);
    expect(settled).toBe(false);
    await batchPutItems(table, [{ id: stateKey(`e-${run}`), version: 3, lastCommitId: big.commitId, state: {} }]);
    expect(Object.fromEntries(await waiting)).toEqual({ [big.commitId]: "accepted" });
  });
});
