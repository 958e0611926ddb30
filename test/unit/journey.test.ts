/**
 * A journey read back from the journeys index (pure): hops in order, the commands a reactor
 * caused nested under the command whose event it reacted to, a span written twice counted once.
 */
import { describe, expect, it } from "vitest";
import { buildJourney, type JourneyItem, outcomeItemKey } from "../../shared/telemetry/journey.ts";

const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
const at = (ms: number) => new Date(Date.UTC(2026, 11, 2, 10, 0, 0, ms)).toISOString();
const span = (commandId: string, spanId: string, name: string, from: number, to: number, more = {}) => ({
  spanId,
  kind: "span" as const,
  commandId,
  name,
  source: "x",
  startedAt: at(from),
  endedAt: at(to),
  ...more,
});

describe("a journey", () => {
  // c1 (the client's) → its event applied and reacted to → c2 (the reactor's) → applied.
  const items: JourneyItem[] = [
    {
      traceId: trace,
      spanId: "batch-1-0",
      kind: "spans",
      spans: [
        span("c1", "s-relayed", "relayed", 20, 25, { parentSpanId: "s-appended" }),
        span("c1", "s-accepted", "accepted", 0, 3),
        span("c1", "s-queued", "queued", 3, 10, { parentSpanId: "s-accepted" }),
        span("c1", "s-appended", "appended", 12, 20, { parentSpanId: "s-decided" }),
        span("c1", "s-decided", "decided", 10, 12, { parentSpanId: "s-queued" }),
      ],
    },
    {
      traceId: trace,
      spanId: "batch-9-0",
      kind: "spans",
      // As the indexer writes them: one JSON string.
      spans: JSON.stringify([
        span("c1", "s-applied-b", "applied", 25, 40, { subscriber: "bank.b", parentSpanId: "s-relayed" }),
        span("c1", "s-applied-a", "applied", 25, 30, { subscriber: "bank.a", parentSpanId: "s-relayed" }),
        span("c1", "s-reacted", "reacted", 25, 31, { subscriber: "bank.saga", parentSpanId: "s-relayed" }),
        // The same span again (a redelivery), later in another batch: still one hop.
        span("c1", "s-relayed", "relayed", 20, 25, { parentSpanId: "s-appended" }),
        span("c2", "s2-queued", "queued", 31, 35, { parentSpanId: "s-reacted" }),
        { spanId: outcomeItemKey("c2"), kind: "outcome", commandId: "c2", command: "Withdraw", status: "accepted" },
      ]),
    },
    // A single-span item, as earlier indexers wrote them.
    { traceId: trace, ...span("c2", "s2-decided", "decided", 35, 36, { parentSpanId: "s2-queued" }), expiresAt: 1 },
  ];

  it("has the command's hops in order of their start, applied ones by subscriber", () => {
    const journey = buildJourney("c1", trace, { command: "Deposit", status: "accepted" }, items);
    expect(journey).toMatchObject({ commandId: "c1", traceId: trace, command: "Deposit", status: "accepted" });
    expect(journey.hops.map((h) => h.subscriber ?? h.name)).toEqual([
      "accepted",
      "queued",
      "decided",
      "appended",
      "relayed",
      "bank.a",
      "bank.b",
      "bank.saga",
    ]);
    expect(journey.hops[0]).toEqual({
      name: "accepted",
      source: "x",
      startedAt: at(0),
      endedAt: at(3),
      durationMs: 3,
    });
  });

  it("nests the commands a reactor caused, with their name and status from their outcome", () => {
    const journey = buildJourney("c1", trace, { command: "Deposit", status: "accepted" }, items);
    expect(journey.caused).toHaveLength(1);
    expect(journey.caused[0]).toMatchObject({ commandId: "c2", command: "Withdraw", status: "accepted", caused: [] });
    expect(journey.caused[0]?.hops.map((h) => h.name)).toEqual(["queued", "decided"]);
  });

  it("shows what it can of an item whose JSON is damaged", () => {
    const damaged: JourneyItem[] = [
      { traceId: trace, spanId: "batch-1-0", kind: "spans", spans: "[{not json" },
      { traceId: trace, ...span("c1", "a", "accepted", 0, 1) },
    ];
    const journey = buildJourney("c1", trace, { command: "X", status: "accepted" }, damaged);
    expect(journey.hops.map((h) => h.name)).toEqual(["accepted"]);
  });

  it("is only the command itself when nothing is indexed yet", () => {
    expect(buildJourney("c1", trace, { command: "Deposit", status: "pending" }, [])).toEqual({
      commandId: "c1",
      traceId: trace,
      command: "Deposit",
      status: "pending",
      hops: [],
      caused: [],
    });
  });

  it("never loops on spans that name each other as parents", () => {
    const loop: JourneyItem[] = [
      { traceId: trace, ...span("c1", "a", "queued", 0, 1, { parentSpanId: "b" }) },
      { traceId: trace, ...span("c2", "b", "queued", 1, 2, { parentSpanId: "a" }) },
    ];
    const journey = buildJourney("c1", trace, { command: "X", status: "accepted" }, loop);
    expect(journey.caused.map((c) => c.commandId)).toEqual(["c2"]);
    expect(journey.caused[0]?.caused).toEqual([]);
  });
});
