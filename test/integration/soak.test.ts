/**
 * The soaks (bench/soak.ts, bench/crash-soak.ts) as part of `npm test`, one after the other in
 * this file so the two heaviest runs never share the machine's two cores.
 *
 * - The bank under seeded faults — duplicates, crashes after partial work, replays and delayed
 *   redeliveries in every consumer, a restart of each emulator process, poison records on the
 *   stream and a poison event, throttles, timeouts and resets at the AWS SDK (1% of calls) — then
 *   the oracle: money conserved, no negative balance, every transfer COMPLETED or FAILED, every
 *   view equal to the fold of the archive, the archive verified, the poison (and only it)
 *   dead-lettered or parked.
 * - The whole `canon dev` process group — functions, API and every emulator — killed with SIGKILL
 *   twice under load and started again on the same data, then the oracle plus: every acknowledged
 *   command ends and none seen accepted changed. `npm run soak -- --crash 10` is the long one.
 */
import { describe, expect, it } from "vitest";
import { runCrashSoak } from "../../bench/crash-soak.ts";
import { runSoak } from "../../bench/soak.ts";

describe("the bank under load and faults", () => {
  // About 40 s of load, quiescing and checks on an idle 2-core machine; the margin is for busy ones.
  it("keeps the oracle", { timeout: 420_000 }, async () => {
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
    const sdk =
      (result.faultCounts.throttle ?? 0) + (result.faultCounts.timeout ?? 0) + (result.faultCounts.reset ?? 0);
    expect(sdk).toBeGreaterThan(0);
  });
});

describe("the bank through kill -9 of everything", () => {
  it("keeps the oracle", { timeout: 420_000 }, async () => {
    const lines: string[] = [];
    const result = await runCrashSoak({
      crashes: 2,
      seed: 20261201,
      accounts: 6,
      clients: 3,
      log: (l) => lines.push(l),
    });
    expect(result.problems, lines.join("\n")).toEqual([]);
    expect(result.line).toMatch(/^oracle: ok ops=\d+ crashes=2 seed=20261201$/);
    expect(result.ops).toBeGreaterThan(0);
  });
});
