/** The states a command handler instance's won commits made, read while the state table is a hop behind. */
import { describe, expect, it } from "vitest";
import type { StateItem } from "../../shared/handlers/aggregate-state.ts";
import { DecidedStates } from "../../shared/handlers/decided-states.ts";

const item = (id: string, version: number, balance: number): StateItem<{ balance: number }> => ({
  id: `a#${id}`,
  version,
  lastCommitId: `${id}-${version}`,
  state: { balance },
});

describe("the states a handler's won commits made", () => {
  it("is read only while ahead of the state table, and dropped once the table catches up", () => {
    const decided = new DecidedStates<{ balance: number }>();
    decided.remember("x", item("x", 3, 30));
    const behind = decided.freshest(
      new Map([
        ["x", item("x", 2, 20)],
        ["y", item("y", 1, 1)],
      ]),
    );
    expect(behind.get("x")?.version).toBe(3);
    expect(behind.get("y")?.version).toBe(1);
    // The table shows version 3 too: from now on the table is read.
    expect(decided.freshest(new Map([["x", item("x", 3, 30)]])).get("x")?.state.balance).toBe(30);
    expect(decided.size).toBe(0);
    expect(decided.freshest(new Map([["x", item("x", 2, 20)]])).get("x")?.version).toBe(2);
  });

  it("never steps back, forgets an aggregate on request, and keeps the most recently used within its bound", () => {
    const decided = new DecidedStates<{ balance: number }>(2);
    decided.remember("x", item("x", 5, 50));
    decided.remember("x", item("x", 4, 40));
    expect(decided.freshest(new Map([["x", item("x", 1, 1)]])).get("x")?.version).toBe(5);
    decided.forget("x");
    expect(decided.freshest(new Map([["x", item("x", 1, 1)]])).get("x")?.version).toBe(1);
    decided.remember("a", item("a", 2, 2));
    decided.remember("b", item("b", 2, 2));
    decided.freshest(new Map([["a", item("a", 1, 1)]])); // a used: b is now the oldest
    decided.remember("c", item("c", 2, 2));
    expect(decided.size).toBe(2);
    const read = decided.freshest(
      new Map([
        ["a", item("a", 1, 1)],
        ["b", item("b", 1, 1)],
        ["c", item("c", 1, 1)],
      ]),
    );
    expect([read.get("a")?.version, read.get("b")?.version, read.get("c")?.version]).toEqual([2, 1, 2]);
  });
});
