/** `canon projection` refuses bad input in the operator's words, before it touches anything. */
import { describe, expect, it } from "vitest";
import { runCanon } from "../support/cli.ts";

const dataDir = "/nonexistent/canon-projection-cli";

describe("canon projection", () => {
  it.each(["abc", "-3", "0", "1e400", ""])("refuses --max-writes-per-second %j", async (limit) => {
    const { code, stderr } = await runCanon(
      dataDir,
      "projection",
      "warm-up",
      "accounts.activity",
      `--max-writes-per-second=${limit}`,
    );
    expect(code).toBe(2);
    expect(stderr).toContain(`--max-writes-per-second takes a positive number of writes a second, not "${limit}"`);
    expect(stderr).toContain("Usage: canon projection warm-up");
  });

  it("refuses an action it does not know, and extra words", async () => {
    for (const args of [["replay", "accounts.activity"], ["warm-up"], ["warm-up", "a", "b"]]) {
      const { code, stderr } = await runCanon(dataDir, "projection", ...args);
      expect(code).toBe(2);
      expect(stderr).toContain('expected "warm-up <service.projection>" or "rebuild <service.projection>"');
    }
  });

  it("documents the checkpoint and the write limit in its help", async () => {
    const { code, stdout } = await runCanon(dataDir, "projection", "--help");
    expect(code).toBe(0);
    expect(stdout).toMatch(/resumes it from there/);
    expect(stdout).toMatch(/--max-writes-per-second <n>/);
  });
});
