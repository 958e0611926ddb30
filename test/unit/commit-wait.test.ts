/** The command handler's wait for its commit: when it looks, and how it learns the pipeline's pace. */
import { describe, expect, it } from "vitest";
import { commitLookSchedule, learnCommitVisibility } from "../../shared/handlers/commit-wait.ts";

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
