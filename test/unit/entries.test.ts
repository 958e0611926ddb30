/**
 * The Lambda entries the kit builds from declared parts (shared/entries/): every planned function
 * of the bank loads as Lambda would run it, from its generated entry and at run time alike, and
 * a part that is not where its name says fails with the file named.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { app } from "../../functions/app.ts";
import { findProjection, findReactor } from "../../shared/entries/find.ts";
import { loadHandler } from "../../shared/entries/load.ts";
import { bundleEntry } from "../../shared/entries/source.ts";
import { planApp } from "../../shared/plan.ts";
import { repoRoot } from "../support/system.ts";

const plan = planApp(app);
const dir = mkdtempSync(join(tmpdir(), "canon-entries-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("built entries", () => {
  it("load every planned function of the bank as a handler, in this process", async () => {
    for (const fn of plan.functions) {
      expect(typeof (await loadHandler(repoRoot, fn)), fn.id).toBe("function");
    }
  });

  it("generate an entry that imports the part's module and the builder of its kind", () => {
    const fn = plan.functions.find((f) => f.id === "accounts-activity-replayer");
    if (fn === undefined) throw new Error("no replayer");
    const source = readFileSync(bundleEntry(fn, repoRoot, dir), "utf8");
    expect(source).toContain("/functions/accounts/activity-projection.ts");
    expect(source).toContain("/shared/entries/view.ts");
    expect(source).toContain('export const handler = viewLambda("accounts", findProjection(part, "activity"');
    expect(source).toContain("export const replay = replayLambda(handler);");
    // Nothing to generate for a module that is its own entry.
    expect(bundleEntry({ ...fn, entry: undefined }, repoRoot, dir)).toBe(join(repoRoot, fn.handler));
  });

  it("refuse a module without the part its name promises, naming it", () => {
    expect(() => findProjection({ other: 1 }, "balances", "functions/accounts/balances-projection.ts")).toThrow(
      'functions/accounts/balances-projection.ts must export one projection({ name: "balances", … }), not 0',
    );
    expect(() => findReactor({}, "saga", "functions/transfers/saga-reactor.ts")).toThrow(
      'functions/transfers/saga-reactor.ts must export one reactor({ name: "saga", … }), not 0',
    );
  });
});
