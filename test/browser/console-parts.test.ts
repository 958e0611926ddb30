/**
 * The console's pure parts, without a system or a browser: how lag behind a shard's tip is
 * counted, how the tail filters, how the CLI reads Server-Sent Events and prints an event.
 */
import { describe, expect, it } from "vitest";
import { formatEvent } from "../../bin/commands/tail.ts";
import { lagOf } from "../../shared/console/bus-watch.ts";
import { parseSse, tailQuery } from "../../shared/console/client.ts";
import { matchesFilter, type TailEvent } from "../../shared/console/source.ts";

// Sequence numbers beyond 2^53, as Kinesis's are: compared as big integers, not as strings.
const seq = (n: number) => (10n ** 50n + BigInt(n)).toString();
const shard = (from: number, to: number, dropped = 0) => ({
  arrivals: Array.from({ length: to - from + 1 }, (_, i) => ({ seq: seq(from + i), at: 1_000 * (from + i) })),
  dropped,
  records: to - from + 1 + dropped,
});

describe("lag behind a shard's tip", () => {
  it("counts the records after the checkpoint, aged by the oldest of them", () => {
    expect(lagOf(shard(1, 10), seq(7), 20_000)).toEqual({ checkpoint: seq(7), records: 3, ageMs: 12_000 });
  });

  it("is none at the tip, past it (the console's reader is behind), or at SHARD_END", () => {
    expect(lagOf(shard(1, 10), seq(10), 20_000)).toMatchObject({ records: 0, ageMs: 0 });
    expect(lagOf(shard(1, 10), seq(12), 20_000)).toMatchObject({ records: 0, ageMs: 0 });
    expect(lagOf(shard(1, 10), "SHARD_END", 20_000)).toMatchObject({ records: 0, ageMs: 0 });
  });

  it("is every record for a reader that has read nothing yet", () => {
    expect(lagOf(shard(5, 10, 4), undefined, 20_000)).toEqual({ checkpoint: undefined, records: 10, ageMs: 15_000 });
  });

  it("is a lower bound when the reader is behind what the console still remembers", () => {
    expect(lagOf(shard(5, 10, 4), seq(2), 20_000)).toEqual({
      checkpoint: seq(2),
      records: 6,
      ageMs: 15_000,
      atLeast: true,
    });
    expect(lagOf(shard(5, 10, 4), seq(5), 20_000)).toEqual({ checkpoint: seq(5), records: 5, ageMs: 14_000 });
  });
});

const event: TailEvent = {
  id: "core/shardId-000000000001/1/0",
  bus: "core",
  shardId: "shardId-000000000001",
  sequenceNumber: "1",
  arrivedAt: "2026-01-02T03:04:05.678Z",
  verdict: "accepted",
  service: "accounts",
  aggregateType: "Account",
  aggregateId: "acc-12",
  type: "FundsDeposited",
  version: 2,
  data: { amountCents: 2500 },
};

describe("the tail's filter", () => {
  it("matches an aggregate by id, by type#id, or by a prefix ending in *", () => {
    for (const aggregate of ["acc-12", "Account#acc-12", "acc-1*", "Account#acc*", "*"]) {
      expect(matchesFilter(event, { aggregate }), aggregate).toBe(true);
    }
    for (const aggregate of ["acc-1", "acc-123", "Transfer#acc-12", "acc-2*"]) {
      expect(matchesFilter(event, { aggregate }), aggregate).toBe(false);
    }
  });

  it("matches any of several types, and the service and bus exactly", () => {
    expect(matchesFilter(event, { types: ["AccountOpened", "FundsDeposited"] })).toBe(true);
    expect(matchesFilter(event, { types: ["AccountOpened"] })).toBe(false);
    expect(matchesFilter(event, { service: "accounts", bus: "core" })).toBe(true);
    expect(matchesFilter(event, { service: "transfers" })).toBe(false);
    expect(matchesFilter(event, { bus: "analytics" })).toBe(false);
    expect(matchesFilter({ ...event, service: undefined, aggregateId: undefined }, { aggregate: "acc-12" })).toBe(
      false,
    );
  });
});

describe("the CLI's side of the tail", () => {
  it("reads Server-Sent Events and ignores comments", () => {
    expect(parseSse('event: event\nid: a/1\ndata: {"x":1}')).toEqual({ event: "event", id: "a/1", data: '{"x":1}' });
    expect(parseSse("data: one\ndata: two")).toEqual({ event: "message", data: "one\ntwo" });
    expect(parseSse(": ping")).toBeUndefined();
  });

  it("asks for several types, an aggregate and a backlog", () => {
    expect(tailQuery({ types: ["A", "B"], aggregate: "Account#acc-1" }, 5)).toBe(
      "backlog=5&type=A&type=B&aggregate=Account%23acc-1",
    );
  });

  it("prints an event on one line, marking what the arbiter did not accept", () => {
    expect(formatEvent(event)).toBe(
      '03:04:05.678  core  accounts  Account#acc-12 v2  FundsDeposited  {"amountCents":2500}',
    );
    expect(formatEvent({ ...event, verdict: "conflict" })).toContain("FundsDeposited [conflict]");
    expect(
      formatEvent({
        ...event,
        verdict: "malformed",
        type: "(malformed)",
        service: undefined,
        aggregateId: undefined,
        reason: "commit is not valid JSON",
      }),
    ).toBe("03:04:05.678  core  -  -  (malformed) [malformed]  commit is not valid JSON");
  });
});
