/**
 * Law K over the wire: the analytics bus carries the system's telemetry, and every command has a
 * journey. A transfer sent with the client's W3C traceparent is followed through every hop —
 * accepted, queued, decided, appended, relayed, applied by each projection, reacted by the saga —
 * and through the commands the saga causes, each with its own hops, all in the client's trace.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localAnalyticsTarget, queryAnalytics } from "../../shared/analytics/sql.ts";
import type { Journey } from "../../shared/telemetry/journey.ts";
import { removeDataDir, startSystem, type TestSystem, waitFor } from "../support/system.ts";

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
}, 120_000);

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

async function trace(commandId: string): Promise<{ status: number; body: Journey & { error?: string } }> {
  const response = await system.get(`/commands/${commandId}/trace`);
  return { status: response.status, body: (await response.json()) as Journey & { error?: string } };
}

/** A journey in short: each command's name, status and hops (with subscribers), nested. */
const summary = (journey: Journey): unknown => ({
  command: journey.command,
  status: journey.status,
  hops: journey.hops.map((h) => (h.subscriber ? `${h.name}:${h.subscriber}` : h.name)),
  caused: journey.caused.map(summary),
});

/** Every command of a journey, depth first. */
const commandsOf = (journey: Journey): Journey[] => [journey, ...journey.caused.flatMap(commandsOf)];
const hopsNamed = (journey: Journey, name: string) => journey.hops.filter((h) => h.name === name);
const subscribers = (journey: Journey, name: string) =>
  hopsNamed(journey, name)
    .map((h) => h.subscriber)
    .sort();

/** The live projections (`<service>.<name>`, a state projection `<service>.state`) subscribed to any of `eventTypes`. */
function planned(role: "projection" | "reactor", eventTypes: readonly string[]): string[] {
  const names = system.plan.functions
    .filter((fn) => fn.role === role && fn.entry !== undefined && fn.source.kind === "sqs")
    // A projection added later (it has a replayer) consumes only once warmed up from the archive (law I).
    .filter((fn) => !system.plan.functions.some((r) => r.role === "replayer" && r.entry?.name === fn.entry?.name))
    .filter((fn) =>
      system.plan.subscriptions.some(
        (s) =>
          fn.source.kind === "sqs" &&
          s.queueId === fn.source.queueId &&
          s.eventTypes.some((t) => eventTypes.includes(t)),
      ),
    )
    .map((fn) => `${fn.entry?.service}.${fn.entry?.kind === "state" ? "state" : fn.entry?.name}`);
  return [...new Set(names)].sort();
}

describe("a command's journey", () => {
  it("follows a transfer through every hop, the saga's commands and each projection, in the client's trace", async () => {
    expect((await system.command("accounts", "OpenAccount", { accountId: "j-a", owner: "Ada" })).status).toBe(
      "accepted",
    );
    await system.command("accounts", "OpenAccount", { accountId: "j-b", owner: "Bob" });
    await system.command("accounts", "Deposit", { accountId: "j-a", amountCents: 1000 });
    const traceId = randomBytes(16).toString("hex");
    const clientSpan = randomBytes(8).toString("hex");

    const sent = await system.post(
      "/commands/transfers/RequestTransfer",
      { transferId: "j-1", fromAccountId: "j-a", toAccountId: "j-b", amountCents: 300 },
      { traceparent: `00-${traceId}-${clientSpan}-01` },
    );
    expect(sent.status).toBe(202);
    // The API answers in the client's trace, in a span of its own.
    expect(sent.headers.get("traceparent")).toMatch(new RegExp(`^00-${traceId}-(?!${clientSpan})[0-9a-f]{16}-01$`));
    const { commandId } = (await sent.json()) as { commandId: string };

    const wanted = [
      "RequestTransfer",
      "DebitForTransfer",
      "MarkTransferDebited",
      "CreditForTransfer",
      "CompleteTransfer",
    ];
    let last: Journey | undefined;
    const journey = await waitFor(
      async () => {
        const { status, body } = await trace(commandId);
        if (status !== 200) return undefined;
        last = body;
        const all = commandsOf(body);
        const complete =
          wanted.every((name) => all.some((c) => c.command === name && c.status === "accepted")) &&
          all.every((c) => ["queued", "decided", "appended", "relayed"].every((hop) => hopsNamed(c, hop).length > 0)) &&
          all.every((c) => hopsNamed(c, "applied").length >= planned("projection", eventTypesOf(c)).length);
        return complete ? body : undefined;
      },
      "the transfer's whole journey",
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last seen: ${JSON.stringify(last && summary(last))}`);
    });

    expect(journey).toMatchObject({ commandId, traceId, command: "RequestTransfer", status: "accepted" });
    expect(journey.hops.map((h) => h.name).slice(0, 5)).toEqual([
      "accepted",
      "queued",
      "decided",
      "appended",
      "relayed",
    ]);
    expect(journey.hops[0]).toMatchObject({ name: "accepted", source: "api" });
    expect(subscribers(journey, "applied")).toEqual(planned("projection", ["TransferRequested"]));
    expect(subscribers(journey, "reacted")).toEqual(["transfers.saga"]);

    // The saga's commands, each caused by the command whose event it reacted to.
    const [debit] = journey.caused;
    expect(journey.caused.map((c) => c.command)).toEqual(["DebitForTransfer"]);
    expect(debit?.caused.map((c) => c.command).sort()).toEqual(["CreditForTransfer", "MarkTransferDebited"]);
    const credit = debit?.caused.find((c) => c.command === "CreditForTransfer");
    expect(credit?.caused.map((c) => c.command)).toEqual(["CompleteTransfer"]);
    expect(subscribers(debit as Journey, "applied")).toEqual(planned("projection", ["FundsDebitedForTransfer"]));
    expect(subscribers(debit as Journey, "applied")).toContain("accounts.balances");
    expect(subscribers(debit as Journey, "applied")).toContain("statements.history");

    for (const command of commandsOf(journey)) {
      expect(command.traceId).toBe(traceId);
      // A caused command starts queued (a reactor sent it); only the client's starts at the API.
      expect(command.hops[0]?.name).toBe(command === journey ? "accepted" : "queued");
      const starts = command.hops.map((h) => h.startedAt);
      expect(starts).toEqual([...starts].sort());
      for (const hop of command.hops) {
        expect(Date.parse(hop.endedAt)).toBeGreaterThanOrEqual(Date.parse(hop.startedAt));
        expect(hop.durationMs).toBe(Date.parse(hop.endedAt) - Date.parse(hop.startedAt));
      }
    }
  }, 150_000);

  it("starts a trace for a client that sends none, or a malformed one", async () => {
    const tries: Record<string, string>[] = [{}, { traceparent: "00-not-a-trace-01" }];
    for (const headers of tries) {
      const sent = await system.post(
        "/commands/accounts/OpenAccount",
        { accountId: `j-${randomBytes(4).toString("hex")}`, owner: "Cy" },
        headers,
      );
      expect(sent.status).toBe(202);
      const started = sent.headers.get("traceparent") ?? "";
      expect(started).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      const { commandId } = (await sent.json()) as { commandId: string };
      const journey = await waitFor(async () => {
        const { body } = await trace(commandId);
        return body.hops?.some((h) => h.name === "applied") ? body : undefined;
      }, "an untraced command's journey");
      expect(journey.traceId).toBe(started.split("-")[1]);
    }
  }, 60_000);

  it("answers 404 for a command it never took and 400 for a malformed id", async () => {
    expect(await trace("c-never-sent")).toEqual({ status: 404, body: { error: 'unknown command id "c-never-sent"' } });
    const malformed = await system.get(`/commands/${encodeURIComponent("bad id!")}/trace`);
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ error: "malformed command id" });
  });

  it("leaves records of every kind the workload made on the analytics bus, countable with SQL", async () => {
    const target = localAnalyticsTarget(system.plan);
    if (target === undefined) throw new Error("the bank declares an analytics bus");
    const counts = await waitFor(
      async () => {
        const result = await queryAnalytics("SELECT kind, count(*) AS n FROM telemetry GROUP BY kind ORDER BY kind", {
          target,
        });
        const byKind = Object.fromEntries(result.rows.map((r) => [String(r.kind), Number(r.n)]));
        return ["apply", "outcome", "request", "span"].every((k) => (byKind[k] ?? 0) > 0) ? byKind : undefined;
      },
      "telemetry in the analytics bus's files",
      60_000,
    );
    expect(counts.request).toBeGreaterThanOrEqual(5);
    const spans = await queryAnalytics(
      "SELECT DISTINCT span_name FROM telemetry WHERE kind = 'span' ORDER BY span_name",
      { target },
    );
    expect(spans.rows.map((r) => r.span_name)).toEqual([
      "accepted",
      "appended",
      "applied",
      "decided",
      "queued",
      "reacted",
      "relayed",
    ]);
  }, 90_000);
});

/** The event types a command's commit carried, from the journey's names (the bank's contracts). */
function eventTypesOf(command: Journey): string[] {
  const byCommand: Record<string, string[]> = {
    RequestTransfer: ["TransferRequested"],
    DebitForTransfer: ["FundsDebitedForTransfer"],
    MarkTransferDebited: ["TransferDebited"],
    CreditForTransfer: ["FundsCreditedForTransfer"],
    CompleteTransfer: ["TransferCompleted"],
  };
  return byCommand[command.command] ?? [];
}
