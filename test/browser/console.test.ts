/**
 * The operator console over the wire: its admin API and the `canon status` / `canon tail`
 * commands against a running system, then the page itself in a real browser (Debian's
 * chromium driven by playwright-core): a command's event appears live in the tail, a parked
 * event is redriven with a click, a detached projection is warmed up with its progress shown.
 * Screenshots go to test-results/console/ (git-ignored). Without /usr/bin/chromium the browser
 * part is skipped (CI installs it: .ci/run).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchCommand } from "../../bin/commands/bench.ts";
import { dynamoClient } from "../../shared/aws/clients.ts";
import type { Overview, TailEvent } from "../../shared/console/source.ts";
import { readSideApp } from "../fixtures/read-side-app.ts";
import { canonBin, runCanon } from "../support/cli.ts";
import { removeDataDir, repoRoot, startSystem, type TestSystem, waitFor } from "../support/system.ts";

/** Debian's chromium (CHROMIUM_PATH overrides, e.g. to check the skip). */
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(chromiumPath);
if (!haveChromium) {
  console.warn(
    `test/browser/console.test.ts: skipping the browser tests: ${chromiumPath} is absent ` +
      "(apt-get install chromium; CI installs it in .ci/run)",
  );
}
const screenshots = join(repoRoot, "test-results", "console");

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem({ app: readSideApp });
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

/** Runs the real `canon` command against the running system's data folder. */
const canon = (...args: string[]) => runCanon(system.dataDir, ...args);

/** Starts the real `canon` command and lets the test watch its output as it runs. */
function spawnCanon(...args: string[]) {
  const child = spawn(process.execPath, [canonBin, ...args, "--data-dir", system.dataDir], { cwd: repoRoot });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGINT"), 60_000);
  const exited = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    }),
  );
  return { exited, stderr: () => stderr };
}

const overview = async (): Promise<Overview> => (await (await system.get("/_canon/api/overview")).json()) as Overview;

describe("the console's API and the CLI", () => {
  it("serves the page at / beside the public API, and refuses cross-site steering", async () => {
    const page = await system.get("/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain("<title>Canon console</title>");
    expect((await system.get("/_canon/ui/app.js")).headers.get("content-type")).toContain("javascript");
    expect((await system.get("/_canon/ui/..%2Fpackage.json")).status).toBe(404);
    expect((await system.get("/health")).status).toBe(200);
    expect((await system.get("/_canon/api/nope")).status).toBe(404);
    // A form post (what another site could make a browser send) is refused.
    const form = await fetch(`${system.url}/_canon/api/projections/accounts.fragile/redrive`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "aggregate=x",
    });
    expect(form.status).toBe(415);
    const crossSite = await fetch(`${system.url}/_canon/api/projections/accounts.activity/warm-up`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "https://evil.example" },
      body: "{}",
    });
    expect(crossSite.status).toBe(403);
  });

  it("shows the relay, the archive and the projections reach the stream's tip", async () => {
    for (const id of ["s-1", "s-2"]) {
      expect((await system.command("accounts", "OpenAccount", { accountId: id, owner: id })).status).toBe("accepted");
    }
    expect((await system.command("accounts", "Deposit", { accountId: "s-1", amountCents: 500 })).status).toBe(
      "accepted",
    );
    const settled = await waitFor(
      async () => {
        const o = await overview();
        const core = o.buses.find((b) => b.bus === "core");
        const archived = o.archive.find((a) => a.bus === "core");
        const records = core?.shards.reduce((sum, s) => sum + s.records, 0) ?? 0;
        const relayed = core?.shards.every((s) => s.relay.records === 0);
        const archivedAll = archived?.shards.every((s) => s.lag.records === 0) && archived.records === records;
        const drained = o.projections.every((p) => p.status !== "live" || p.queue.visible + p.queue.inFlight === 0);
        return records >= 3 && relayed && archivedAll && drained ? o : undefined;
      },
      "the relay, the archiver and the projections to catch up",
      60_000,
    );
    const core = settled.buses.find((b) => b.bus === "core");
    expect(core?.shards.map((s) => s.relay.checkpoint)).toEqual(core?.shards.map((s) => s.tip));
    const balances = settled.projections.find((p) => p.name === "accounts.balances");
    expect(balances).toMatchObject({ status: "live", canRebuild: true, canWarmUp: false, deadLetters: 0, parked: 0 });
    expect(balances?.items?.count).toBeGreaterThanOrEqual(2);
    expect(settled.projections.find((p) => p.name === "accounts.activity")).toMatchObject({
      status: "detached",
      canWarmUp: true,
    });
    expect(settled.functions.find((f) => f.id === "core-relay")?.status).toBe("running");
    expect(settled.functions.find((f) => f.id === "accounts-activity")?.status).toBe("detached");

    const commands = (await (await system.get("/_canon/api/commands?limit=5")).json()) as { command: string }[];
    expect(commands.map((c) => c.command)).toContain("Deposit");
    const series = (await (await system.get("/_canon/api/series")).json()) as { t: number }[];
    expect(series.length).toBeGreaterThan(0);
  });

  it("canon status prints the system at a glance, canon tail follows it", async () => {
    const status = await canon("status");
    expect(status.stderr).toBe("");
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^Buses$/m);
    expect(status.stdout).toMatch(/accounts\.balances\s+live/);
    expect(status.stdout).toMatch(/accounts\.activity\s+detached/);
    expect(status.stdout).toContain("Nothing parked; every dead-letter queue is empty.");
    const json = JSON.parse((await canon("status", "--json")).stdout) as Overview;
    expect(json.buses.map((b) => b.bus).sort()).toEqual(["analytics", "core"]);

    // The last event of s-1 already on the bus, then one that arrives while it follows.
    const following = spawnCanon("tail", "--aggregate", "s-1", "--last", "1", "--count", "2", "--json");
    await waitFor(async () => (following.stderr().includes("live (Ctrl-C stops)") ? true : undefined), "tail live");
    expect((await system.command("accounts", "Withdraw", { accountId: "s-1", amountCents: 200 })).status).toBe(
      "accepted",
    );
    const tailed = await following.exited;
    expect(tailed.code).toBe(0);
    const events = tailed.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as TailEvent);
    expect(events.map((e) => [e.aggregateId, e.type, e.version, e.verdict])).toEqual([
      ["s-1", "FundsDeposited", 2, "accepted"],
      ["s-1", "FundsWithdrawn", 3, "accepted"],
    ]);
    const text = await canon("tail", "--type", "AccountOpened", "--last", "5", "--count", "2");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/core {2}accounts {2}Account#s-1 v1 {2}AccountOpened {2}\{"accountId":"s-1"/);

    expect((await canon("tail", "--count", "x")).code).toBe(2);
    expect((await canon("status", "--bogus")).code).toBe(2);
    const help = await canon("tail", "--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Exit status:");
  });
});

describe("canon bench", () => {
  const project = (scripts: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), "canon-bench-"));
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "x", private: true, scripts }));
    return dir;
  };

  it("runs the project's bench script with the arguments after --, and exits with its status", async () => {
    const dir = project({ bench: `node -e "process.exit(process.argv.includes('fast') ? 7 : 1)"` });
    try {
      expect(await benchCommand(["--", "fast"], dir)).toBe(7);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exits 2 with a clear message when there are no benchmarks", async () => {
    const dir = project({});
    const errors: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => errors.push(args.join(" "));
    try {
      expect(await benchCommand([], dir)).toBe(2);
    } finally {
      console.error = original;
      rmSync(dir, { recursive: true, force: true });
    }
    expect(errors.join("\n")).toContain('package.json has no "bench" script');
  });
});

describe.skipIf(!haveChromium)("the console in a real browser", () => {
  let browser: Browser;
  let page: Page;
  const shot = (name: string) => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true });
    // launch() gives the browser a fresh temporary profile (user-data dir) of its own.
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("dialog", (dialog) => void dialog.accept());
    await page.goto(`${system.url}/`);
    await page.locator("#projections tr[data-projection='accounts.balances']").waitFor({ timeout: 30_000 });
  });

  afterAll(async () => {
    await browser?.close();
  });

  it("shows a command's event in the live tail as it happens", async () => {
    await page.fill("#tail-form input[name=aggregate]", "b-1");
    await page.click("#tail-form button[type=submit]");
    await page.locator("#tail-status", { hasText: "live" }).waitFor({ timeout: 15_000 });
    expect(await page.locator("#tail-body tr").count()).toBe(0);

    const response = await system.post("/commands/accounts/OpenAccount", { accountId: "b-1", owner: "Browser" });
    expect(response.status).toBe(202);
    const row = page.locator("#tail-body tr", { hasText: "Account#b-1" });
    await row.waitFor({ timeout: 30_000 });
    expect(await row.textContent()).toMatch(/AccountOpened[\s\S]*"owner":"Browser"/);
    // Filtered on the server: another aggregate's event does not show.
    expect((await system.command("accounts", "OpenAccount", { accountId: "b-2", owner: "Other" })).status).toBe(
      "accepted",
    );
    await page.locator("#commands tr", { hasText: "b-2" }).waitFor({ timeout: 30_000 });
    expect(await page.locator("#tail-body tr").count()).toBe(1);
    await page.locator("#commands tr", { hasText: "b-1" }).getByText("accepted").waitFor({ timeout: 30_000 });
    await shot("1-live-tail");
  });

  it("lists a parked event with its reason and redrives it with a click", async () => {
    const fragile = system.resources.tableNames.get("accounts-fragile") as string;
    // The projection's bug ships: it cannot apply a 13-cent deposit.
    await dynamoClient().send(new PutCommand({ TableName: fragile, Item: { id: "bug" } }));
    expect((await system.command("accounts", "OpenAccount", { accountId: "r-1", owner: "Poison" })).status).toBe(
      "accepted",
    );
    expect((await system.command("accounts", "Deposit", { accountId: "r-1", amountCents: 13 })).status).toBe(
      "accepted",
    );
    const parked = page.locator("#dead-letters tr.parked[data-group='Account#r-1']");
    await parked.waitFor({ timeout: 60_000 });
    expect(await parked.textContent()).toMatch(/accounts\.fragile[\s\S]*bug: cannot apply a 13-cent deposit/);
    await page.locator("#glance .tile.bad", { hasText: "Parked" }).waitFor({ timeout: 10_000 });
    const status = await canon("status");
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(/parked {2}accounts\.fragile Account#r-1: 1 event — Error: bug/);
    await parked.scrollIntoViewIfNeeded();
    await shot("2-parked");

    // The fix ships; one click replays the parked event in order.
    await dynamoClient().send(new DeleteCommand({ TableName: fragile, Key: { id: "bug" } }));
    await parked.getByRole("button", { name: "Redrive" }).click();
    await page
      .locator(".notice", { hasText: "accounts.fragile Account#r-1: 1 event(s) replayed in order; no longer parked" })
      .waitFor({ timeout: 30_000 });
    await parked.waitFor({ state: "detached", timeout: 15_000 });
    await page.locator("#dead-letters", { hasText: "Nothing parked." }).waitFor({ timeout: 15_000 });
    const item = await waitFor(async () => {
      const response = await system.get("/views/accounts/fragile/r-1");
      return response.status === 200 ? ((await response.json()) as { version: number }) : undefined;
    }, "r-1 in the fragile view");
    expect(item.version).toBe(2);
    await shot("3-redriven");
  });

  it("warms a detached projection up from the archive, showing its progress", async () => {
    const row = page.locator("#projections tr[data-projection='accounts.activity']");
    await row.getByRole("button", { name: "Warm up" }).click();
    const job = page.locator("#replays tr", { hasText: "accounts.activity" });
    await job.waitFor({ timeout: 15_000 });
    await job.getByText("done", { exact: true }).waitFor({ timeout: 90_000 });
    expect(await job.textContent()).toMatch(/warm-up[\s\S]*(replay|attach) · \d+ events · [\d.]+ \/ [\d.]+ MB/);
    await row.getByText("live", { exact: true }).waitFor({ timeout: 30_000 });
    const activity = await waitFor(async () => {
      const response = await system.get("/views/accounts/activity/s-1");
      return response.status === 200
        ? ((await response.json()) as { deposits: number; withdrawals: number })
        : undefined;
    }, "s-1's activity");
    expect(activity).toMatchObject({ deposits: 1, withdrawals: 1 });
    await shot("4-warmed-up");
    // What a newcomer sees first, as the window shows it.
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: join(screenshots, "5-first-screen.png") });
  });
});
