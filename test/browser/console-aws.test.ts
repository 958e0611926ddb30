/**
 * The console page over a deployed app (`canon console --aws`'s source), in Debian's chromium:
 * it says what it reads, marks lags known by their age, draws iterator ages in seconds, shows
 * a denied call as a warning, has no Rebuild button, says why it has no hop latencies without
 * Athena, opens a command's journey from the deployed tables, and starts a warm-up as a state
 * machine execution with a click. The "deployed app" is the bank on the embedded local cloud, its
 * control plane the loopback fake (see test/integration/console-aws.test.ts). Screenshots go
 * to test-results/console-aws/ (git-ignored); without /usr/bin/chromium this file is skipped.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { app } from "../../functions/app.ts";
import { awsConsoleSource } from "../../shared/console/aws-source.ts";
import { type StandaloneConsole, serveConsole } from "../../shared/console/server.ts";
import { type FakeAwsControl, startFakeAwsControl } from "../support/fake-aws-control.ts";
import { deployToFake, functionName, region } from "../support/fake-deployment.ts";
import { removeDataDir, repoRoot, startSystem, type TestSystem } from "../support/system.ts";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(chromiumPath);
if (!haveChromium) {
  console.warn(`test/browser/console-aws.test.ts: skipping: ${chromiumPath} is absent (CI installs it in .ci/run)`);
}
const screenshots = join(repoRoot, "test-results", "console-aws");

describe.skipIf(!haveChromium)("the console page over a deployed app", () => {
  let system: TestSystem;
  let fake: FakeAwsControl;
  let served: StandaloneConsole;
  let browser: Browser;
  let page: Page;
  const savedEnv = { ...process.env };
  const shot = (name: string) => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    system = await startSystem();
    fake = await startFakeAwsControl();
    Object.assign(process.env, fake.env);
    deployToFake(fake, system);
    const relay = system.plan.functions.find((f) => f.role === "relay" && f.source.kind === "kinesis");
    const now = Date.now();
    fake.setMetric(
      {
        namespace: "AWS/Lambda",
        name: "IteratorAge",
        dimensions: { FunctionName: functionName(relay?.id ?? "") },
        stat: "Maximum",
      },
      [
        { t: new Date(now - 120_000), value: 2_000 },
        { t: new Date(now - 30_000), value: 300_000 },
      ],
    );
    served = await serveConsole({
      source: awsConsoleSource({ app, plan: system.plan, region, sampleEveryMs: 500, metricsEveryMs: 500 }),
      repoRoot,
      host: "127.0.0.1",
      port: 0,
    });
    mkdirSync(screenshots, { recursive: true });
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("dialog", (dialog) => void dialog.accept());
  });

  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    await fake?.close();
    await system?.stop();
    removeDataDir(system?.dataDir ?? "");
    for (const key of Object.keys(fake?.env ?? {})) delete process.env[key];
    Object.assign(process.env, savedEnv);
  });

  it("says it reads the deployed app, with lags by age and no rebuild", async () => {
    expect((await system.command("accounts", "OpenAccount", { accountId: "web-1", owner: "Ada" })).status).toBe(
      "accepted",
    );
    await page.goto(`${served.url}/`);
    await page.locator("#target", { hasText: `deployed, AWS ${region}` }).waitFor({ timeout: 30_000 });
    await page.locator("#bus-lag-caption", { hasText: "age of the oldest unread record" }).waitFor({ timeout: 30_000 });
    // The relay's iterator age (5 min) over what the console's reader saw arrive in that time.
    await page.locator("#buses", { hasText: "≈" }).waitFor({ timeout: 30_000 });
    const balances = page.locator("#projections tr[data-projection='accounts.balances']");
    await balances.waitFor({ timeout: 30_000 });
    expect(await balances.textContent()).toContain("live");
    expect(await balances.getByRole("button", { name: /Rebuild/ }).count()).toBe(0);
    await shot("1-overview");
  });

  it("says why it has no hop latencies when Athena cannot be read, and still opens a journey", async () => {
    // The fake control plane has no Athena: the query fails, and the panel says so in words.
    await page.locator("#latencies .empty-note", { hasText: "Could not read Athena" }).waitFor({ timeout: 60_000 });
    const opened = await system.command("accounts", "OpenAccount", { accountId: "web-2", owner: "Grace" });
    await page.goto(`${served.url}/#journey=${opened.commandId}`);
    await page.locator("#journey .wf-summary", { hasText: "OpenAccount" }).waitFor({ timeout: 30_000 });
    await shot("1b-journey");
  });

  it("shows a denied call as a warning and keeps the rest", async () => {
    fake.fail("cloudwatch", "GetMetricData", { status: 400, type: "AccessDeniedException", message: "no metrics" });
    try {
      await page.locator("#warnings .warning-line", { hasText: "CloudWatch metrics: AccessDeniedException" }).waitFor({
        timeout: 30_000,
      });
      expect(await page.locator("#projections tr[data-projection='accounts.balances']").count()).toBe(1);
      await shot("2-warning");
    } finally {
      fake.fail("cloudwatch", "GetMetricData", undefined);
    }
    await page.locator("#warnings .warning-line").first().waitFor({ state: "detached", timeout: 30_000 });
  });

  it("starts a warm-up as an execution of the projection's state machine with a click", async () => {
    const row = page.locator("#projections tr[data-projection='accounts.activity']");
    await row.getByText("detached").waitFor({ timeout: 30_000 });
    await row.getByRole("button", { name: /Warm up/ }).click();
    await page.locator("#replays tr", { hasText: "accounts.activity" }).waitFor({ timeout: 30_000 });
    expect(fake.executions().map((e) => e.stateMachineArn)).toEqual([
      expect.stringContaining("accounts-activity-warm-up"),
    ]);
    await row.getByText("warming up").waitFor({ timeout: 30_000 });
    await shot("3-warm-up");
  });
});
