/**
 * `canon add service|command|reactor` write parts that type-check, plan, synthesize and run at
 * once, and refuse bad input in the user's words before writing anything. Written into a copy of
 * functions/, infra/ and events/ (the kit and node_modules linked in), never into this tree.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { ScaffoldError, scaffoldCommand, scaffoldReactor, scaffoldService } from "../../bin/commands/add.ts";
import { app } from "../../functions/app.ts";
import { validateCommand } from "../../shared/domain/commands.ts";
import type { Contract } from "../../shared/domain/proto-contract.ts";
import { loadHandler } from "../../shared/entries/load.ts";
import type { DeciderPart, ReactorPart } from "../../shared/parts.ts";
import { planApp } from "../../shared/plan.ts";
import type { AppDefinition } from "../../shared/topology.ts";
import { useScratchRepo } from "../support/scratch-repo.ts";
import { repoRoot } from "../support/system.ts";

const root = useScratchRepo("canon-add-parts-", {
  copied: ["functions", "infra", "events", "cdk.json"],
  linked: ["shared", "node_modules", "package.json", "package-lock.json", "biome.json", ".gitignore"],
});

const canon = (...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, "bin/canon.ts"), "add", ...args, "--root", root],
      { cwd: repoRoot, timeout: 120_000 },
      (e, o, r) => resolve({ code: e ? Number(e.code ?? 1) : 0, stdout: o, stderr: r }),
    );
  });

function refusal(scaffold: () => unknown): string {
  try {
    scaffold();
  } catch (error) {
    expect(error).toBeInstanceOf(ScaffoldError);
    return (error as Error).message;
  }
  throw new Error("it was scaffolded");
}

describe("canon add service, command and reactor", () => {
  it("refuse bad input in the user's words", () => {
    expect(refusal(() => scaffoldService(app, repoRoot, "Ledger", {}))).toBe(
      'a service\'s name is lower-case words joined by "-", not "Ledger"',
    );
    expect(refusal(() => scaffoldService(app, repoRoot, "accounts", {}))).toBe(
      'the app already has a service "accounts"',
    );
    expect(refusal(() => scaffoldService(app, repoRoot, "ledger", { aggregate: "Account" }))).toBe(
      'the aggregate type "Account" is taken by another service',
    );
    expect(refusal(() => scaffoldService(app, repoRoot, "ledger", { bus: "main" }))).toBe(
      'no bus "main" (the app has core, analytics)',
    );
    expect(refusal(() => scaffoldCommand(app, repoRoot, "accounts.close"))).toBe(
      'a command\'s name is PascalCase, e.g. CloseLedger, not "close"',
    );
    expect(refusal(() => scaffoldCommand(app, repoRoot, "accounts.Deposit"))).toBe(
      "accounts already has a command Deposit",
    );
    expect(refusal(() => scaffoldCommand(app, repoRoot, "statements.Close"))).toBe(
      "statements takes no commands (it declares no contract and decider)",
    );
    expect(refusal(() => scaffoldReactor(app, repoRoot, "transfers.saga", ["TransferRequested"], ["accounts"]))).toBe(
      'transfers already has a projection or reactor "saga"',
    );
    expect(refusal(() => scaffoldReactor(app, repoRoot, "transfers.notify", ["TransferRequested"], []))).toBe(
      "--sends-to names at least one service whose commands it sends",
    );
    expect(
      refusal(() => scaffoldReactor(app, repoRoot, "transfers.notify", ["TransferRequested"], ["statements"])),
    ).toBe('--sends-to: "statements" takes no commands (it declares no contract and decider)');
    expect(refusal(() => scaffoldReactor(app, repoRoot, "transfers.notify", ["Nope"], ["accounts"]))).toMatch(
      /^no service emits "Nope"/,
    );
  });

  it("exits 2 with the reason and the usage, and writes nothing", async () => {
    const before = readFileSync(join(root, "functions/app.ts"), "utf8");
    const bad = await canon("service", "accounts");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('canon add: the app already has a service "accounts"');
    expect(bad.stderr).toContain("Usage: canon add service");
    expect(readFileSync(join(root, "functions/app.ts"), "utf8")).toBe(before);
    expect(existsSync(join(root, "functions/accounts/close-reactor.ts"))).toBe(false);
  });

  it("write a service, a command and a reactor that type-check, plan, synthesize and run", async () => {
    for (const args of [
      ["service", "ledger"],
      ["command", "ledger.CloseLedger"],
      ["reactor", "ledger.audit", "--events", "LedgerOpened,FundsDeposited", "--sends-to", "ledger"],
    ]) {
      const made = await canon(...args);
      expect(made.stderr, args.join(" ")).toBe("");
      expect(made.code).toBe(0);
    }
    // A service is one folder of three files and its .proto.
    for (const file of ["contract.ts", "decider.ts", "service.ts"]) {
      expect(existsSync(join(root, "functions/ledger", file))).toBe(true);
    }
    expect(existsSync(join(root, "events/proto/canon/ledger/v1/ledger.proto"))).toBe(true);

    // Type-checks: the modules, their tests and the declarations, with the kit as it is.
    const tsc = join(repoRoot, "node_modules/typescript/bin/tsc");
    execFileSync(process.execPath, [tsc, "-p", root], { cwd: root, timeout: 120_000 });
    // Lints clean, in the repository's style.
    const biome = join(repoRoot, "node_modules/@biomejs/biome/bin/biome");
    execFileSync(process.execPath, [biome, "check", "functions/ledger", "functions/app.ts", "test/unit"], {
      cwd: root,
      timeout: 60_000,
    });
    // Their scaffolded tests pass.
    const vitest = join(repoRoot, "node_modules/vitest/vitest.mjs");
    execFileSync(
      process.execPath,
      [vitest, "run", "test/unit/ledger-decider.test.ts", "test/unit/ledger-audit-reactor.test.ts"],
      {
        cwd: root,
        timeout: 120_000,
        stdio: "pipe",
      },
    );

    // Planned: the command side and the reactor, each an entry the kit builds.
    const url = (path: string) => pathToFileURL(join(root, path)).href;
    const scaffolded = ((await import(url("functions/app.ts"))) as { app: AppDefinition }).app;
    const plan = planApp(scaffolded);
    const ledger = plan.functions.filter((f) => f.owner.kind === "service" && f.owner.name === "ledger");
    expect(ledger.map((f) => [f.id, f.entry?.kind])).toEqual([
      ["ledger-command-handler", "command-handler"],
      ["ledger-state", "state"],
      ["ledger-audit", "reactor"],
    ]);
    expect(scaffolded.services.find((s) => s.name === "ledger")?.commands).toEqual(["OpenLedger", "CloseLedger"]);

    // Synthesizes: its stack, with its functions (bundling left out, as in test/infra).
    const { addCanonStacks } = (await import(url("infra/canon-app.ts"))) as typeof import("../../infra/canon-app.ts");
    const cdk = new App({ context: { "aws:cdk:bundling-stacks": [] } });
    const stacks = addCanonStacks(cdk, plan);
    const stack = stacks.services.get("ledger");
    expect(stack).toBeDefined();
    Template.fromStack(stack as never).resourceCountIs("AWS::Lambda::Function", 3);

    // Runs: the new command is validated by its contract and decided; the reactor reacts; the
    // Lambda entries build from the declarations.
    const { ledgerContract } = (await import(url("functions/ledger/contract.ts"))) as { ledgerContract: Contract };
    expect(validateCommand(ledgerContract.commands, "CloseLedger", { ledgerId: "l-1" })).toMatchObject({
      ok: true,
      aggregateId: "l-1",
    });
    expect(validateCommand(ledgerContract.commands, "CloseLedger", { ledgerId: "" }).ok).toBe(false);
    const { ledgerDecider } = (await import(url("functions/ledger/decider.ts"))) as { ledgerDecider: DeciderPart };
    const context = { commandId: "c", receivedAt: new Date(0) };
    expect(ledgerDecider.decide({ type: "CloseLedger", ledgerId: "l-1" }, { status: "open" }, context)).toEqual([
      { type: "CloseLedgerRecorded", data: { ledgerId: "l-1" } },
    ]);
    const { audit } = (await import(url("functions/ledger/audit-reactor.ts"))) as { audit: ReactorPart };
    expect(audit.react({ type: "LedgerOpened", data: { ledgerId: "l-1" } } as never)).toEqual([]);
    for (const fn of ledger) expect(typeof (await loadHandler(root, fn))).toBe("function");
  }, 300_000);
});
