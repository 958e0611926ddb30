/**
 * `canon add projection` scaffolds a projection that type-checks, plans and runs at once, and
 * refuses bad input in the user's words before it writes anything. The scaffold is written into
 * a copy of functions/ (the rest of the repository linked in), never into this tree.
 */
import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { ScaffoldError, scaffoldProjection } from "../../bin/commands/add.ts";
import { app } from "../../functions/app.ts";
import type { ProjectedEvent } from "../../shared/handlers/projection.ts";
import { planApp } from "../../shared/plan.ts";
import type { AppDefinition } from "../../shared/topology.ts";
import { useScratchRepo } from "../support/scratch-repo.ts";
import { repoRoot } from "../support/system.ts";

const root = useScratchRepo("canon-add-", {
  copied: ["functions"],
  linked: ["events", "shared", "node_modules", "package.json", "biome.json", ".gitignore"],
});

const canon = (...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, "bin/canon.ts"), ...args],
      { cwd: repoRoot, timeout: 60_000 },
      (e, o, r) => resolve({ code: e ? Number(e.code ?? 1) : 0, stdout: o, stderr: r }),
    );
  });

describe("canon add projection", () => {
  it("refuses bad input in the user's words", () => {
    const refusal = (target: string, events: string[]) => {
      try {
        scaffoldProjection(app, repoRoot, target, events);
      } catch (error) {
        expect(error).toBeInstanceOf(ScaffoldError);
        return (error as Error).message;
      }
      throw new Error(`${target} was scaffolded`);
    };
    expect(refusal("accounts", ["FundsDeposited"])).toBe(
      'expected <service>.<name>, e.g. accounts.largest-deposits, not "accounts"',
    );
    expect(refusal("ledger.totals", ["FundsDeposited"])).toBe(
      'no service "ledger" (the app has accounts, transfers, statements)',
    );
    expect(refusal("accounts.Big_Ones", ["FundsDeposited"])).toBe(
      'a projection\'s name is lower-case words joined by "-", not "Big_Ones"',
    );
    expect(refusal("accounts.balances", ["FundsDeposited"])).toBe(
      'accounts already has a projection or reactor "balances"',
    );
    expect(refusal("accounts.big", [])).toBe("--events names at least one event type");
    expect(refusal("accounts.big", ["FundsDepositted"])).toMatch(
      /^no service emits "FundsDepositted" \(the app's event types: AccountOpened, FundsDeposited, /,
    );
  });

  it("exits 2 with the reason and the usage, and writes nothing", async () => {
    const before = readFileSync(join(root, "functions/accounts/service.ts"), "utf8");
    const bad = await canon("add", "projection", "accounts.big", "--events", "Nope", "--root", root);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('canon add: no service emits "Nope"');
    expect(bad.stderr).toContain("canon add projection <service>.<name> --events");
    expect(readFileSync(join(root, "functions/accounts/service.ts"), "utf8")).toBe(before);
  });

  it("writes a projection that type-checks, is planned and folds events", async () => {
    const made = await canon(
      "add",
      "projection",
      "statements.movements",
      "--events",
      "FundsDeposited,TransferRequested",
      "--root",
      root,
    );
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    expect(made.stdout).toContain("wrote functions/statements/movements-projection.ts");

    // One of the service's own events too (the docs' example).
    const own = await canon("add", "projection", "accounts.big-deposits", "--events", "FundsDeposited", "--root", root);
    expect(own.code).toBe(0);

    // Type-checks: the modules, their tests and the services' declarations, with the kit as it is.
    execFileSync(process.execPath, [join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", root], {
      cwd: root,
      timeout: 120_000,
    });

    // In the repository's style: its linter and formatter find nothing to change.
    const written = [
      "functions/statements/movements-projection.ts",
      "functions/statements/service.ts",
      "test/unit/statements-movements-projection.test.ts",
    ];
    execFileSync(process.execPath, [join(repoRoot, "node_modules/@biomejs/biome/bin/biome"), "check", ...written], {
      cwd: root,
      timeout: 60_000,
    });

    // Its scaffolded test passes.
    execFileSync(
      process.execPath,
      [join(repoRoot, "node_modules/vitest/vitest.mjs"), "run", "test/unit/statements-movements-projection.test.ts"],
      { cwd: root, timeout: 120_000, stdio: "pipe" },
    );

    // Is planned, as the CDK stacks and the local cloud are built: its function, table and queue.
    const scaffolded = (await import(pathToFileURL(join(root, "functions/app.ts")).href)) as { app: AppDefinition };
    const plan = planApp(scaffolded.app);
    const fn = plan.functions.find((f) => f.id === "statements-movements");
    expect(fn).toMatchObject({ role: "projection", handler: "functions/statements/movements-projection.ts" });
    expect(plan.tables.some((t) => t.id === "statements-movements")).toBe(true);

    // Runs: the generated fold folds events of two services' unions.
    const module = (await import(pathToFileURL(join(root, "functions/statements/movements-projection.ts")).href)) as {
      evolveMovements(item: unknown, event: Partial<ProjectedEvent>): unknown;
      movementsEventTypes: string[];
      movements: { name: string; events: string[] };
    };
    expect(module.movementsEventTypes).toEqual(["FundsDeposited", "TransferRequested"]);
    expect(module.movements).toMatchObject({ name: "movements", events: ["FundsDeposited", "TransferRequested"] });
    expect(fn?.entry).toEqual({ kind: "projection", service: "statements", name: "movements", view: "aggregate" });
    const first = module.evolveMovements(undefined, { subject: "a", aggregateversion: 1, time: "t1" });
    expect(module.evolveMovements(first, { subject: "a", aggregateversion: 2, time: "t2" })).toEqual({
      id: "a",
      aggregateId: "a",
      events: 2,
      lastAt: "t2",
      version: 2,
    });
  }, 180_000);
});
