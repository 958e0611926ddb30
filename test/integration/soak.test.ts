/**
 * A short soak (bench/soak.ts) as part of `npm test`: the bank under seeded faults — duplicates,
 * crashes after partial work, replays and delayed redeliveries in every consumer, a restart of
 * each emulator process, poison records on the stream and a poison event — then the oracle:
 * money conserved, no negative balance, every transfer COMPLETED or FAILED, every view equal to
 * the fold of the archive, the archive verified, the poison (and only it) dead-lettered or parked.
 * Throttles, timeouts and connection resets are injected at the AWS SDK all along (1% of calls).
 */
import { describe, expect, it } from "vitest";
import { runSoak } from "../../bench/soak.ts";

describe("the bank under load and faults", () => {
  // About 40 s of load, quiescing and checks on an idle 2-core machine; the margin is for busy ones.
  it("keeps the oracle", { timeout: 300_000 }, async () => {
    const lines: string[] = [];
    const result = await runSoak({
      seconds: 15,
      seed: 20261126,
      accounts: 8,
      clients: 4,
      sdkFaults: 0.01,
      log: (l) => lines.push(l),
    });
    expect(result.problems, lines.join("\n")).toEqual([]);
    expect(result.line).toMatch(/^oracle: ok ops=\d+ faults=\d+ seed=20261126$/);
    expect(result.ops).toBeGreaterThan(0);
    expect(result.faultCounts.restarts).toBe(3);
    expect(result.faultCounts.poisonEvents).toBe(1);
    expect(result.faultCounts.poisonRecords).toBeGreaterThanOrEqual(3);
    // Throttles, timeouts and resets at the SDK, retried as the SDK and Lambda would.
    expect(
      (result.faultCounts.throttle ?? 0) + (result.faultCounts.timeout ?? 0) + (result.faultCounts.reset ?? 0),
    ).toBeGreaterThan(0);
  });
});
