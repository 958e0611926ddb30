/**
 * A short crash soak (bench/crash-soak.ts) as part of `npm test`: the whole `canon dev` process
 * group — functions, API and every emulator — killed with SIGKILL twice under load and started
 * again on the same data, then the oracle: every acknowledged command ends and none seen accepted
 * changed, money conserved, every transfer ended, views equal the fold of the archive, the archive
 * verified, nothing dead-lettered or parked. `npm run soak -- --crash 10` is the long one.
 */
import { describe, expect, it } from "vitest";
import { runCrashSoak } from "../../bench/crash-soak.ts";

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
