/**
 * The one command-line reader of every `canon` command (bin/commands/cli.ts), through the real
 * CLI: help on stdout (exit 0); an unknown option, a missing value, an argument or an action it
 * does not take refused in the user's words, with the usage, on stderr (exit 2).
 */
import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { canonBin } from "../support/cli.ts";
import { repoRoot } from "../support/system.ts";

/** Runs `canon <args>` to its end (nothing here reaches a running system). */
function canon(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [canonBin, ...args], { cwd: repoRoot, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("canon's command lines", () => {
  it.each(["dev", "dlq", "archive", "projection", "status", "tail", "console", "bench", "subject", "add"])(
    "canon %s --help prints its usage and exits 0",
    async (command) => {
      const { code, stdout, stderr } = await canon(command, "--help");
      expect(code).toBe(0);
      expect(stdout).toContain(`Usage: canon ${command}`);
      expect(stderr).toBe("");
      expect((await canon(command, "-h")).stdout).toBe(stdout);
    },
  );

  it("refuses an unknown option by its name, with the usage, exit 2", async () => {
    const { code, stdout, stderr } = await canon("status", "--bogus");
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toMatch(/^canon status: unknown option --bogus\n\ncanon status — /);
    expect(stderr).toContain("Usage: canon status [options]");
    expect((await canon("archive", "verify", "-x")).stderr).toMatch(/^canon archive: unknown option -x\n/);
  });

  it("refuses an option without its value, saying how to give one that starts with a dash", async () => {
    const missing = await canon("tail", "--count");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^canon tail: --count needs a value\n\n/);
    const ambiguous = await canon("dev", "--port", "--external");
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/^canon dev: --port needs a value \(write --port=<value> for one that starts/);
    const flag = await canon("status", "--json=yes");
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^canon status: --json takes no value\n/);
  });

  it("canon add refuses an unknown kind, a missing name and an unknown option before writing anything", async () => {
    const kind = await canon("add", "widget", "x");
    expect(kind.code).toBe(2);
    expect(kind.stderr).toMatch(
      /^canon add: expected "service <name>", "command <name>", "projection <name>" or "reactor <name>"\n/,
    );
    expect((await canon("add", "projection")).stderr).toMatch(/^canon add: expected "service <name>"/);
    const option = await canon("add", "projection", "accounts.x", "--event", "FundsDeposited");
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/^canon add: unknown option --event\n/);
    const refused = await canon("add", "projection", "nowhere.x", "--events", "FundsDeposited");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^canon add: no service "nowhere"/);
  });

  it("refuses an argument a command does not take, and a missing or unknown action", async () => {
    const extra = await canon("status", "now");
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/^canon status: unexpected argument "now"\n/);
    for (const args of [["dlq"], ["dlq", "move"], ["dlq", "redrive", "accounts.balances"], ["dlq", "purge"]]) {
      const refused = await canon(...args);
      expect(refused.code, args.join(" ")).toBe(2);
      expect(refused.stderr).toMatch(
        /^canon dlq: expected "list", "redrive <service.projection> <aggregate>" or "move <queue>"\n\n/,
      );
      expect(refused.stderr).toContain("Usage: canon dlq list");
    }
    expect((await canon("archive", "sql")).stderr).toMatch(/^canon archive: expected "verify" or "sql <query>"\n/);
  });

  it("refuses a bad value in the command's words", async () => {
    const max = await canon("dlq", "move", "accounts-commands", "--max", "1.5");
    expect(max.code).toBe(2);
    expect(max.stderr).toMatch(/^canon dlq: --max takes a positive whole number of messages, not "1.5"\n/);
  });

  it("names an unknown command, and prints the commands without one", async () => {
    const unknown = await canon("deploy");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^canon: unknown command "deploy"\n\ncanon — operate/);
    const bare = await canon();
    expect(bare.code).toBe(2);
    expect(bare.stdout).toContain("Usage: canon <command> [options]");
  });
});
