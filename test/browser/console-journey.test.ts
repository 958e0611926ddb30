/**
 * A command's journey in the console: the admin API's trace and hop latency routes (their
 * answers and their refusals), then the page in Debian's chromium: a transfer opened from the
 * command list drawn as a waterfall (one bar per hop on a shared time axis, each subscriber by
 * name, the saga's commands nested with their own hops), hops that arrive later drawn when they
 * are indexed, a link to a journey, bad ids answered in words, and the hop latency panel. The
 * source is a stand-in with a fixed journey, so the bars' positions can be checked exactly;
 * test/integration/telemetry-journey.test.ts checks the journeys a running system records.
 * Screenshots go to test-results/console-journey/ (git-ignored); without /usr/bin/chromium the
 * browser part is skipped.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PutRecordCommand } from "@aws-sdk/client-kinesis";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient, kinesisClient } from "../../shared/aws/clients.ts";
import { type StandaloneConsole, serveConsole } from "../../shared/console/server.ts";
import type {
  CommandView,
  ConsoleSource,
  HopLatencyReport,
  JourneyHop,
  JourneyView,
  Overview,
  TailEvent,
} from "../../shared/console/source.ts";
import { ids } from "../../shared/plan.ts";
import { removeDataDir, repoRoot, startSystem, type TestSystem, waitFor } from "../support/system.ts";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(chromiumPath);
if (!haveChromium) {
  console.warn(`test/browser/console-journey.test.ts: skipping the browser part: ${chromiumPath} is absent`);
}
const screenshots = join(repoRoot, "test-results", "console-journey");

const t0 = Date.parse("2026-03-04T05:06:07.000Z");
/** A hop from `from` to `to` milliseconds after the transfer was accepted. */
const hop = (name: string, source: string, from: number, to: number, subscriber?: string): JourneyHop => ({
  name,
  source,
  ...(subscriber ? { subscriber } : {}),
  startedAt: new Date(t0 + from).toISOString(),
  endedAt: new Date(t0 + to).toISOString(),
  durationMs: to - from,
});

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const commandHops = (service: string, from: number) => [
  hop("queued", `${service}-command-handler`, from, from + 15),
  hop("decided", `${service}-command-handler`, from + 15, from + 20),
  hop("appended", `${service}-command-handler`, from + 20, from + 30),
];

/** A transfer over 200 ms: its saga reacts and sends a Withdraw and a Deposit. */
function transferJourney(depositIndexed: boolean): JourneyView {
  return {
    commandId: "c-transfer-1",
    traceId,
    command: "RequestTransfer",
    status: "accepted",
    hops: [
      hop("accepted", "api", 0, 4),
      ...commandHops("transfers", 4),
      hop("relayed", "core-relay", 34, 50),
      hop("applied", "transfers-status", 50, 60, "transfers.status"),
      hop("reacted", "transfers-saga", 50, 70, "transfers.saga"),
    ],
    caused: [
      {
        commandId: "c-withdraw-1",
        traceId,
        command: "Withdraw",
        status: "accepted",
        hops: [
          ...commandHops("accounts", 70),
          hop("relayed", "core-relay", 100, 120),
          hop("applied", "accounts-balances", 120, 130, "accounts.balances"),
        ],
        caused: [],
      },
      {
        commandId: "c-deposit-1",
        traceId,
        command: "Deposit",
        status: depositIndexed ? "accepted" : "pending",
        hops: depositIndexed
          ? [
              ...commandHops("accounts", 130),
              hop("relayed", "core-relay", 160, 180),
              hop("applied", "accounts-balances", 180, 200, "accounts.balances"),
            ]
          : [hop("queued", "accounts-command-handler", 130, 145)],
        caused: [],
      },
    ],
  };
}

const commandList: CommandView[] = [
  {
    commandId: "c-transfer-1",
    service: "transfers",
    command: "RequestTransfer",
    aggregateId: "t-1",
    origin: "api",
    status: "accepted",
    at: new Date(t0).toISOString(),
    events: [{ type: "TransferRequested", version: 1 }],
  },
  {
    commandId: "c-quiet-1",
    service: "accounts",
    command: "OpenAccount",
    aggregateId: "acc-9",
    origin: "api",
    status: "pending",
    at: new Date(t0 - 5_000).toISOString(),
  },
];

/** The transfer's first event, as the live tail shows it. */
const tailEvent: TailEvent = {
  id: "core/shardId-000000000000/1/0",
  bus: "core",
  shardId: "shardId-000000000000",
  sequenceNumber: "1",
  arrivedAt: new Date(t0 + 40).toISOString(),
  verdict: "accepted",
  service: "transfers",
  aggregateType: "Transfer",
  aggregateId: "t-1",
  type: "TransferRequested",
  version: 1,
  commandId: "c-transfer-1",
  data: {},
};

/** The console's port with nothing running but commands, their journeys and hop latencies. */
function stubSource() {
  const state = { depositIndexed: false, latencyMinutes: [] as number[], latencyUnavailable: false };
  const overview: Overview = {
    generatedAt: new Date().toISOString(),
    target: { kind: "local" },
    prefix: "stub",
    startedAt: new Date().toISOString(),
    buses: [],
    archive: [],
    projections: [],
    functions: [],
    queues: [],
    deadLetters: { parked: [], deadLetterQueues: [] },
    replays: [],
  };
  const source: ConsoleSource = {
    overview: async () => ({ ...overview, generatedAt: new Date().toISOString() }),
    buses: async () => [],
    archive: async () => [],
    projections: async () => [],
    functions: async () => [],
    deadLetters: async () => overview.deadLetters,
    commands: async (limit) => commandList.slice(0, limit),
    async trace(commandId) {
      if (commandId === "c-transfer-1") return transferJourney(state.depositIndexed);
      if (commandId === "c-quiet-1") {
        return { commandId, traceId, command: "OpenAccount", status: "pending", hops: [], caused: [] };
      }
      return undefined;
    },
    async hopLatencies(minutes): Promise<HopLatencyReport> {
      state.latencyMinutes.push(minutes);
      if (state.latencyUnavailable) {
        return { minutes, generatedAt: new Date().toISOString(), hops: [], unavailable: "No analytics bus here." };
      }
      return {
        minutes,
        generatedAt: new Date().toISOString(),
        hops: [
          { hop: "decided", count: 120, p50Ms: 5, p90Ms: 9, p99Ms: 20 },
          { hop: "applied", subscriber: "accounts.balances", count: 240, p50Ms: 12, p90Ms: 30, p99Ms: 80 * minutes },
        ],
      };
    },
    series: () => [],
    recentEvents: () => [tailEvent],
    subscribe: () => () => {},
    redrive: async () => {
      throw new Error("not in this test");
    },
    moveDeadLetters: async () => {
      throw new Error("not in this test");
    },
    startReplay: async () => {
      throw new Error("not in this test");
    },
    replays: () => [],
    stop: async () => {},
  };
  return { source, state };
}

let served: StandaloneConsole;
let stub: ReturnType<typeof stubSource>;

beforeAll(async () => {
  stub = stubSource();
  served = await serveConsole({ source: stub.source, repoRoot, host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await served?.stop();
});

const get = async (path: string) => {
  const response = await fetch(`${served.url}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe("the console's journey routes", () => {
  it("answer a command's journey, 404 for an unknown command, 400 for a malformed id", async () => {
    const found = await get("/_canon/api/commands/c-transfer-1/trace");
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ commandId: "c-transfer-1", traceId, command: "RequestTransfer" });
    expect((found.body.caused as JourneyView[]).map((c) => c.command)).toEqual(["Withdraw", "Deposit"]);

    expect(await get("/_canon/api/commands/c-nobody/trace")).toEqual({
      status: 404,
      body: { error: 'no command has the id "c-nobody"' },
    });
    for (const bad of ["a%20b", "a%2Fb", "%C3%A9t%C3%A9", "x".repeat(257)]) {
      const answer = await get(`/_canon/api/commands/${bad}/trace`);
      expect(answer.status, bad).toBe(400);
      expect(answer.body.error, bad).toMatch(/is not a command id: one has 1 to 256 letters, digits/);
    }
  });

  it("answer hop latencies for a window of 1 minute to a day, and refuse any other", async () => {
    const answer = await get("/_canon/api/hop-latencies?minutes=5");
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ minutes: 5, hops: [{ hop: "decided", p99Ms: 20 }, { hop: "applied" }] });
    expect((await get("/_canon/api/hop-latencies")).body.minutes).toBe(15);
    for (const bad of ["0", "1441", "2.5", "abc", "-3"]) {
      const refused = await get(`/_canon/api/hop-latencies?minutes=${bad}`);
      expect(refused.status, bad).toBe(400);
      expect(refused.body.error).toContain("minutes must be a whole number from 1 to 1440");
    }
  });
});

describe.skipIf(!haveChromium)("the journey in a real browser", () => {
  let browser: Browser;
  let page: Page;
  const shot = (name: string) => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
  /** The waterfall's rows as [kind, depth or hop, subscriber, command]. */
  const rows = () =>
    page.$$eval("#journey .wf-row:not(.wf-axis)", (elements) =>
      elements.map((e) => {
        const d = (name: string) => e.getAttribute(`data-${name}`);
        return e.classList.contains("wf-command")
          ? ["command", d("command"), d("depth")]
          : ["hop", d("hop"), d("subscriber"), d("command")];
      }),
    );
  const barStyle = (command: string, hopName: string, subscriber = "") =>
    page
      .locator(
        `#journey .wf-hop[data-command='${command}'][data-hop='${hopName}'][data-subscriber='${subscriber}'] .wf-bar`,
      )
      .getAttribute("style");

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true });
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${served.url}/`);
    await page.locator("#commands tr[data-command='c-transfer-1']").waitFor({ timeout: 30_000 });
  });

  afterAll(async () => {
    await browser?.close();
  });

  it("draws a transfer's journey from the command list: every hop, each subscriber, the saga's commands", async () => {
    await page.locator("#commands tr[data-command='c-transfer-1']").getByRole("button", { name: "Journey" }).click();
    await page.locator("#journey .waterfall").waitFor({ timeout: 10_000 });
    expect(new URL(page.url()).hash).toBe("#journey=c-transfer-1");
    expect(await page.inputValue("#journey-form input[name=commandId]")).toBe("c-transfer-1");
    expect(await rows()).toEqual([
      ["command", "c-transfer-1", "0"],
      ["hop", "accepted", "", "c-transfer-1"],
      ["hop", "queued", "", "c-transfer-1"],
      ["hop", "decided", "", "c-transfer-1"],
      ["hop", "appended", "", "c-transfer-1"],
      ["hop", "relayed", "", "c-transfer-1"],
      ["hop", "applied", "transfers.status", "c-transfer-1"],
      ["hop", "reacted", "transfers.saga", "c-transfer-1"],
      ["command", "c-withdraw-1", "1"],
      ["hop", "queued", "", "c-withdraw-1"],
      ["hop", "decided", "", "c-withdraw-1"],
      ["hop", "appended", "", "c-withdraw-1"],
      ["hop", "relayed", "", "c-withdraw-1"],
      ["hop", "applied", "accounts.balances", "c-withdraw-1"],
      ["command", "c-deposit-1", "1"],
      ["hop", "queued", "", "c-deposit-1"],
    ]);
    const summary = await page.locator("#journey .wf-summary").textContent();
    expect(summary).toContain("RequestTransfer");
    expect(summary).toContain(`trace ${traceId}`);
    expect(summary).toContain("2 caused command(s)");
    // The axis runs from the transfer's acceptance to the last hop indexed (145 ms): bars by time.
    expect(await barStyle("c-transfer-1", "accepted")).toBe(`left:0.00%;width:${((4 / 145) * 100).toFixed(2)}%`);
    expect(await barStyle("c-withdraw-1", "relayed")).toBe(
      `left:${((100 / 145) * 100).toFixed(2)}%;width:${((20 / 145) * 100).toFixed(2)}%`,
    );
    const saga = page.locator("#journey .wf-hop[data-hop='reacted']");
    expect(await saga.textContent()).toMatch(/^reacted transfers\.saga\s*\+50 ms · 20 ms$/);
    expect(await saga.locator(".wf-bar").getAttribute("title")).toContain("reacted by transfers.saga (transfers-saga)");
    expect(await page.locator("#journey .wf-tick").allTextContents()).toEqual([
      "0 ms",
      "36 ms",
      "73 ms",
      "109 ms",
      "145 ms",
    ]);
    await page.locator("#journey .waterfall").scrollIntoViewIfNeeded();
    await shot("1-waterfall");
  });

  it("draws the hops indexed after it was opened, on a longer axis", async () => {
    stub.state.depositIndexed = true;
    await page.locator("#journey .wf-hop[data-command='c-deposit-1'][data-hop='applied']").waitFor({ timeout: 15_000 });
    expect(await page.locator("#journey .wf-hop[data-command='c-deposit-1']").count()).toBe(5);
    expect(await barStyle("c-deposit-1", "applied", "accounts.balances")).toBe("left:90.00%;width:10.00%");
    expect(await page.locator("#journey .wf-command[data-command='c-deposit-1']").textContent()).toContain("accepted");
    await shot("2-waterfall-complete");
  });

  it("opens a journey from a link, and says so when a command has no hops yet", async () => {
    await page.goto(`${served.url}/#journey=c-quiet-1`);
    await page.locator("#journey .empty-note", { hasText: "No hops indexed yet" }).waitFor({ timeout: 10_000 });
    expect(await page.locator("#journey .wf-summary").textContent()).toContain("OpenAccount");
    await page.goto(`${served.url}/#journey=c-transfer-1`);
    await page.locator("#journey .waterfall").waitFor({ timeout: 10_000 });
  });

  it("opens the journey of the command that caused an event in the live tail", async () => {
    await page.goto(`${served.url}/`);
    const event = page.locator("#tail-body tr[data-type='TransferRequested']");
    await event.waitFor({ timeout: 15_000 });
    expect(await page.locator("#journey .waterfall").count()).toBe(0);
    await event.getByRole("link", { name: "journey" }).click();
    await page.locator("#journey .wf-command[data-command='c-transfer-1']").waitFor({ timeout: 10_000 });
    expect(new URL(page.url()).hash).toBe("#journey=c-transfer-1");
  });

  it("answers an unknown, a malformed or no command id in words, and the page keeps working", async () => {
    const ask = async (id: string) => {
      await page.fill("#journey-form input[name=commandId]", id);
      await page.click("#journey-form button[type=submit]");
    };
    await ask("c-nobody");
    await page.locator("#journey .journey-error", { hasText: 'no command has the id "c-nobody"' }).waitFor();
    expect(await page.locator("#journey .waterfall").count()).toBe(0);
    await ask("a b/c");
    await page.locator("#journey .journey-error", { hasText: '"a b/c" is not a command id' }).waitFor();
    await shot("3-malformed-id");
    await ask("   ");
    await page.locator("#journey .journey-error", { hasText: "Type a command id" }).waitFor();
    // The rest of the page still answers, and the list still opens journeys.
    await page.locator("#commands tr[data-command='c-transfer-1']").getByRole("button", { name: "Journey" }).click();
    await page.locator("#journey .waterfall").waitFor({ timeout: 10_000 });
    expect(await page.locator("#journey .journey-error").count()).toBe(0);
  });

  it("shows per-hop latency percentiles over the window chosen", async () => {
    const applied = page.locator("#latencies tr[data-hop='applied'][data-subscriber='accounts.balances']");
    await applied.waitFor({ timeout: 15_000 });
    expect(stub.state.latencyMinutes).toContain(15);
    expect(await applied.textContent()).toMatch(/applied\s*accounts\.balances\s*240\s*12 ms\s*30 ms\s*1\.20 s/);
    // p50 to p99 on the table's common scale (the largest p99 is the whole track).
    expect(await applied.locator(".lat-p50").getAttribute("style")).toBe("width:1.00%");
    expect(await page.locator("#latencies tr[data-hop='decided'] .lat-tail").getAttribute("style")).toBe(
      `left:${((5 / 1200) * 100).toFixed(2)}%;width:${((15 / 1200) * 100).toFixed(2)}%`,
    );
    await page.selectOption("#latency-minutes", "60");
    await applied.getByText("4.80 s").waitFor({ timeout: 10_000 });
    expect(stub.state.latencyMinutes).toContain(60);
    await page.locator("#latency-section").scrollIntoViewIfNeeded();
    await shot("4-hop-latency");

    stub.state.latencyUnavailable = true;
    await page.selectOption("#latency-minutes", "5");
    await page.locator("#latencies .empty-note", { hasText: "No analytics bus here." }).waitFor({ timeout: 10_000 });
  });
});

describe("the console's journeys over the local cloud", () => {
  let system: TestSystem;
  const hex = (bytes: number) => randomBytes(bytes).toString("hex");
  const put = (table: string, item: Record<string, unknown>) =>
    dynamoClient().send(new PutCommand({ TableName: system.resources.tableNames.get(table), Item: item }));
  const trace = async (id: string) => {
    const response = await system.get(`/_canon/api/commands/${encodeURIComponent(id)}/trace`);
    return { status: response.status, body: (await response.json()) as JourneyView & { error?: string } };
  };

  beforeAll(async () => {
    system = await startSystem();
  });

  afterAll(async () => {
    await system?.stop();
    if (system) removeDataDir(system.dataDir);
  });

  it("shows the analytics bus as a telemetry bus: counted, its readers the indexer and the store, not in the tail", async () => {
    const stream = system.resources.streamNames.get("analytics") as string;
    const record = {
      kind: "request",
      at: new Date().toISOString(),
      source: "test",
      request: { route: "/x", status: 200 },
    };
    const put = await kinesisClient().send(
      new PutRecordCommand({
        StreamName: stream,
        PartitionKey: hex(16),
        Data: new TextEncoder().encode(JSON.stringify(record)),
      }),
    );
    const overview = async () => (await (await system.get("/_canon/api/overview")).json()) as Overview;
    const settled = await waitFor(
      async () => {
        const analytics = (await overview()).buses.find((b) => b.bus === "analytics");
        const shard = analytics?.shards.find(
          (s) => s.tip !== undefined && BigInt(s.tip) >= BigInt(put.SequenceNumber ?? "0"),
        );
        // Read by the journey indexer and stored by the local sink: both checkpoints at the tip.
        return shard !== undefined && shard.relay.records === 0 && shard.archiver.records === 0 ? analytics : undefined;
      },
      "the analytics bus read to its tip by the journey indexer and the local sink",
      60_000,
    );
    expect(settled?.kind).toBe("telemetry");
    expect((await overview()).buses.find((b) => b.bus === "core")?.kind).toBe("events");
    const tail = (await (await system.get("/_canon/api/events?bus=analytics&limit=1000")).json()) as TailEvent[];
    expect(tail).toEqual([]);
  });

  it("reads a journey from the tables the system keeps, a reactor's command by its service's outcomes", async () => {
    // A transfer the API took, the span its saga reacted in, and the Withdraw that reaction sent:
    // written as the API, the handlers and the journey indexer write them.
    const traceId = hex(16);
    const transfer = `c-${hex(8)}`;
    const withdraw = `c-${hex(8)}`;
    const [accepted, reacted, queued] = [hex(8), hex(8), hex(8)];
    const at = (ms: number) => new Date(t0 + ms).toISOString();
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    const span = (spanId: string, commandId: string, name: string, from: number, to: number, more = {}) =>
      put(ids.journeysTable(), {
        traceId,
        spanId,
        kind: "span",
        commandId,
        name,
        source: "test",
        startedAt: at(from),
        endedAt: at(to),
        expiresAt,
        ...more,
      });
    await put(ids.apiCommandsTable(), {
      id: transfer,
      service: "transfers",
      command: "RequestTransfer",
      aggregateId: "t-seeded",
      requestHash: "x",
      receivedAt: at(0),
      traceId,
    });
    await put(ids.outcomesTable("transfers"), {
      id: transfer,
      status: "accepted",
      command: "RequestTransfer",
      aggregateId: "t-seeded",
      attempt: 1,
      updatedAt: at(20),
    });
    await put(ids.outcomesTable("accounts"), {
      id: withdraw,
      status: "rejected",
      command: "Withdraw",
      aggregateId: "acc-seeded",
      attempt: 1,
      reason: "insufficient funds",
      updatedAt: at(90),
      traceId,
    });
    await span(accepted, transfer, "accepted", 0, 3);
    await span(reacted, transfer, "reacted", 40, 60, { subscriber: "transfers.saga", parentSpanId: accepted });
    await span(queued, withdraw, "queued", 60, 80, { parentSpanId: reacted });
    await put(ids.journeysTable(), {
      traceId,
      spanId: `outcome-${withdraw}`,
      kind: "outcome",
      commandId: withdraw,
      command: "Withdraw",
      status: "rejected",
      expiresAt,
    });

    const found = await trace(transfer);
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ commandId: transfer, traceId, command: "RequestTransfer", status: "accepted" });
    expect(found.body.hops.map((h) => [h.name, h.subscriber, h.durationMs])).toEqual([
      ["accepted", undefined, 3],
      ["reacted", "transfers.saga", 20],
    ]);
    expect(found.body.caused).toMatchObject([
      { commandId: withdraw, command: "Withdraw", status: "rejected", hops: [{ name: "queued", durationMs: 20 }] },
    ]);
    // The API never took the Withdraw (a reactor sent it): the console finds it all the same.
    const sent = await trace(withdraw);
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ commandId: withdraw, command: "Withdraw", status: "rejected", traceId });
    expect(sent.body.hops.map((h) => h.name)).toEqual(["queued"]);

    expect(await trace("c-never-taken")).toEqual({
      status: 404,
      body: { error: 'no command has the id "c-never-taken"' },
    });
    expect((await trace("not an id")).status).toBe(400);
  });
  it("shows a transfer's whole journey after a bank workload, and each hop's latency, in the browser", async () => {
    for (const [id, cents] of [
      ["j-a", 1000],
      ["j-b", 0],
    ] as const) {
      expect((await system.command("accounts", "OpenAccount", { accountId: id, owner: id })).status).toBe("accepted");
      if (cents > 0) await system.command("accounts", "Deposit", { accountId: id, amountCents: cents });
    }
    const transfer = await system.command("transfers", "RequestTransfer", {
      transferId: "j-tr-1",
      fromAccountId: "j-a",
      toAccountId: "j-b",
      amountCents: 300,
    });
    expect(transfer.status).toBe("accepted");
    const all = (j: JourneyView): JourneyView[] => [j, ...j.caused.flatMap(all)];
    const applied = (j: JourneyView) => j.hops.filter((h) => h.name === "applied").map((h) => h.subscriber);
    let last: JourneyView | undefined;
    const journey = await waitFor(
      async () => {
        const { status, body } = await trace(transfer.commandId);
        if (status !== 200) return undefined;
        last = body;
        const commands = all(body);
        // The saga's last step, CompleteTransfer, relayed: every command before it was decided.
        const done =
          commands.some((c) => c.command === "CompleteTransfer" && c.hops.some((h) => h.name === "relayed")) &&
          applied(body).includes("transfers.transfers") &&
          commands.some((c) => applied(c).includes("accounts.balances"));
        return done ? body : undefined;
      },
      "the transfer's journey with the saga's commands, each relayed and applied",
      90_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last read: ${JSON.stringify(last, null, 1)}`);
    });
    expect(journey.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(journey.hops.map((h) => h.name).slice(0, 4)).toEqual(["accepted", "queued", "decided", "appended"]);
    expect(journey.hops.some((h) => h.name === "reacted" && h.subscriber === "transfers.saga")).toBe(true);
    const caused = all(journey).slice(1);
    expect(caused.map((c) => c.command)).toEqual(
      expect.arrayContaining(["DebitForTransfer", "MarkTransferDebited", "CreditForTransfer", "CompleteTransfer"]),
    );
    expect(caused.every((c) => c.status === "accepted")).toBe(true);
    for (const c of caused) expect(c.traceId).toBe(journey.traceId);
    // A command the saga sent opens on its own too, in the same trace, with its own hops.
    const debit = caused.find((c) => c.command === "DebitForTransfer") as JourneyView;
    // Its trace is on its commit, which the console's reader of the bus has read (or soon will).
    const alone = await waitFor(async () => {
      const answer = await trace(debit.commandId);
      return answer.body.traceId ? answer : undefined;
    }, "the saga's DebitForTransfer in its trace");
    expect(alone.status).toBe(200);
    expect(alone.body).toMatchObject({ commandId: debit.commandId, traceId: journey.traceId, status: "accepted" });
    expect(alone.body.hops.map((h) => h.name)).toEqual(debit.hops.map((h) => h.name));

    if (!haveChromium) return;
    const browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(`${system.url}/`);
      const row = page.locator(`#commands tr[data-command='${transfer.commandId}']`);
      await row.waitFor({ timeout: 30_000 });
      await row.getByRole("button", { name: "Journey" }).click();
      await page.locator("#journey .waterfall").waitFor({ timeout: 15_000 });
      for (const c of caused) {
        await page.locator(`#journey .wf-command[data-command='${c.commandId}']`).waitFor({ timeout: 15_000 });
      }
      expect(
        await page.locator("#journey .wf-hop[data-hop='applied'][data-subscriber='accounts.balances']").count(),
      ).toBeGreaterThan(0);
      // The spans reach the columnar store within seconds: the latency panel shows every hop.
      await page.locator("#latencies tr[data-hop='decided']").waitFor({ timeout: 60_000 });
      await page
        .locator("#latencies tr[data-hop='applied'][data-subscriber='accounts.balances']")
        .waitFor({ timeout: 60_000 });
      await page.locator("#journey-section").scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(screenshots, "5-bank-transfer.png"), fullPage: true });
      await page.locator("#journey-section").screenshot({ path: join(screenshots, "6-bank-transfer-journey.png") });
    } finally {
      await browser.close();
    }
  });
});
