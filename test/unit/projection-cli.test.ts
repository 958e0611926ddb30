/** `canon projection` refuses bad input in the operator's words, before it touches anything. */
import { describe, expect, it } from "vitest";
import { parseWriteLimit } from "../../bin/commands/projection.ts";
import { runCanon } from "../support/cli.ts";

const dataDir = "/nonexistent/canon-projection-cli";

describe("canon projection", () => {
  it.each(["abc", "-3", "0", "1e400", "", " ", "0x"])("refuses --max-writes-per-second %j", (limit) => {
    expect(parseWriteLimit(limit)).toEqual(
      new Error(`--max-writes-per-second takes a positive number of writes a second, not "${limit}"`),
    );
  });

  it("takes a positive rate, or none", () => {
    expect(parseWriteLimit("250")).toBe(250);
    expect(parseWriteLimit("0.5")).toBe(0.5);
    expect(parseWriteLimit(undefined)).toBeUndefined();
  });

  it("exits 2 with the reason and its usage, from the command line", async () => {
    const bad = await runCanon(dataDir, "projection", "warm-up", "accounts.activity", "--max-writes-per-second=-3");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--max-writes-per-second takes a positive number of writes a second, not "-3"');
    expect(bad.stderr).toContain("Usage: canon projection warm-up");
    const action = await runCanon(dataDir, "projection", "replay", "accounts.activity");
    expect(action.code).toBe(2);
    expect(action.stderr).toContain('expected "warm-up <service.projection>" or "rebuild <service.projection>"');
  });

  it("documents the checkpoint and the write limit in its help", async () => {
    const { code, stdout } = await runCanon(dataDir, "projection", "--help");
    expect(code).toBe(0);
    expect(stdout).toMatch(/resumes it from there/);
    expect(stdout).toMatch(/--max-writes-per-second <n>/);
  });
});
