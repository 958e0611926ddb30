/**
 * The evolution gate refuses breaking changes with buf's message: each case edits a copy of the
 * schemas and runs `buf breaking` against the originals (offline, as `npm run check:contracts` does
 * against main).
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../support/system.ts";

const buf = join(repoRoot, "node_modules/.bin/buf");
const events = join(repoRoot, "events");
const accounts = "proto/canon/bank/accounts/v1/accounts.proto";

/** Runs buf breaking on a copy of events/ changed by `edit`; returns buf's output ("" when it passes). */
function breakingAfter(edit: (proto: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), "canon-contracts-"));
  try {
    cpSync(join(events, "proto"), join(dir, "proto"), { recursive: true });
    cpSync(join(events, "buf.yaml"), join(dir, "buf.yaml"));
    const file = join(dir, accounts);
    writeFileSync(file, edit(readFileSync(file, "utf8")));
    execFileSync(buf, ["breaking", dir, "--against", events], { encoding: "utf8", stdio: "pipe" });
    return "";
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the contracts gate", () => {
  it("refuses a field type change", () => {
    const out = breakingAfter((p) =>
      p.replace(
        "message FundsDeposited {\n  string account_id = 1;\n  uint64 amount_cents = 2;",
        "message FundsDeposited {\n  string account_id = 1;\n  string amount_cents = 2;",
      ),
    );
    expect(out).toMatch(
      /Field "2" with name "amount_cents" on message "FundsDeposited" changed type from "uint64" to "string"/,
    );
  });

  it("refuses a reused field number", () => {
    const out = breakingAfter((p) =>
      p.replace(
        "message FundsWithdrawn {\n  string account_id = 1;\n  uint64 amount_cents = 2;",
        "message FundsWithdrawn {\n  string account_id = 1;\n  uint64 amount = 2;",
      ),
    );
    expect(out).toMatch(/Field "2" on message "FundsWithdrawn" changed name from "amount_cents" to "amount"/);
  });

  it("allows adding a field", () => {
    const out = breakingAfter((p) =>
      p.replace(
        "message FundsWithdrawn {\n  string account_id = 1;",
        "message FundsWithdrawn {\n  string account_id = 1;\n  string memo = 9;",
      ),
    );
    expect(out).toBe("");
  });
});

/** Runs the gate's marks check on a copy of events/ changed by `edit`; returns its output and exit code. */
function marksAfter(edit: (proto: string) => string): { code: number; out: string } {
  const dir = mkdtempSync(join(tmpdir(), "canon-marks-"));
  try {
    cpSync(join(events, "proto"), join(dir, "proto"), { recursive: true });
    cpSync(join(events, "buf.yaml"), join(dir, "buf.yaml"));
    const file = join(dir, accounts);
    writeFileSync(file, edit(readFileSync(file, "utf8")));
    const out = execFileSync(process.execPath, [join(events, "check-marks.ts"), dir], {
      encoding: "utf8",
      stdio: "pipe",
    });
    return { code: 0, out };
  } catch (error) {
    const failed = error as { status?: number; stderr?: string };
    return { code: failed.status ?? 1, out: String(failed.stderr ?? error) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const mark = (subject: string) => `[(canon.privacy.v1.personal).subject_field = "${subject}"]`;

describe("the contracts gate's personal data marks", () => {
  it("passes the bank's marks", () => {
    expect(marksAfter((p) => p)).toEqual({ code: 0, out: "contracts: personal data marks checked\n" });
  });

  it("refuses a mark on a field that is not a string or bytes", () => {
    const { code, out } = marksAfter((p) =>
      p.replace(
        "message FundsDeposited {\n  string account_id = 1;\n  uint64 amount_cents = 2;",
        `message FundsDeposited {\n  string account_id = 1;\n  uint64 amount_cents = 2 ${mark("account_id")};`,
      ),
    );
    expect(code).toBe(1);
    expect(out).toContain(
      "canon.bank.accounts.v1.FundsDeposited.amount_cents is marked personal but is not a string or bytes field",
    );
  });

  it("refuses a mark whose subject field is not in the message", () => {
    const { code, out } = marksAfter((p) =>
      p.replace(`string owner = 2 ${mark("account_id")};`, `string owner = 2 ${mark("holder_id")};`),
    );
    expect(code).toBe(1);
    expect(out).toContain(
      'canon.bank.accounts.v1.AccountOpened.owner names subject_field "holder_id", which is not a field of canon.bank.accounts.v1.AccountOpened',
    );
  });

  it("refuses a subject field that is not a string", () => {
    const { code, out } = marksAfter((p) =>
      p.replace(
        "message FundsDeposited {\n  string account_id = 1;\n  uint64 amount_cents = 2;",
        `message FundsDeposited {\n  string account_id = 1;\n  uint64 amount_cents = 2;\n  string memo = 3 ${mark("amount_cents")};`,
      ),
    );
    expect(code).toBe(1);
    expect(out).toContain('FundsDeposited.memo names subject_field "amount_cents", which is not a string field');
  });
});
