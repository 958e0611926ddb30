/**
 * The telemetry emitter: bounded, batched, never in the way. Records wait in a buffer and go out
 * in one PutRecords when due (a second after the last flush, or 500 waiting); a full buffer drops
 * and counts; a failed put is counted, never thrown. Each record is the contract's Protobuf JSON.
 */

import type { PutRecordsRequestEntry } from "@aws-sdk/client-kinesis";
import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TelemetryRecordSchema } from "../../events/gen/canon/telemetry/v1/telemetry_pb.ts";
import { createEmitter, type PutTelemetry } from "../../shared/telemetry/emitter.ts";
import { recordJson, type TelemetryRecord } from "../../shared/telemetry/records.ts";
import { hopSpan } from "../../shared/telemetry/spans.ts";
import { startTrace } from "../../shared/telemetry/trace-context.ts";

const request = (n: number): TelemetryRecord => ({
  kind: "request",
  source: "api",
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  request: { method: "POST", route: "/commands/:service/:command", status: 202, latencyMs: n },
});

/** Prepare: an emitter on a fake clock and a fake stream that keeps what it is sent. */
function harness(
  options: { maxBuffered?: number; recordsPerEntry?: number; fail?: (call: number) => Error | number | undefined } = {},
) {
  let clock = 1_000_000;
  const calls: PutRecordsRequestEntry[][] = [];
  const put: PutTelemetry = async (_stream, entries) => {
    calls.push([...entries]);
    const failure = options.fail?.(calls.length);
    if (failure instanceof Error) throw failure;
    return failure ?? 0;
  };
  const emitter = createEmitter({
    streamName: "analytics",
    timer: false,
    put,
    now: () => clock,
    ...(options.maxBuffered === undefined ? {} : { maxBuffered: options.maxBuffered }),
    // One record a stream record unless a test says otherwise: the counts below are of records.
    recordsPerEntry: options.recordsPerEntry ?? 1,
  });
  const sent = () =>
    calls.flatMap((call) =>
      call.flatMap((e) =>
        Buffer.from(e.Data as Uint8Array)
          .toString("utf8")
          .split("\n")
          .map((line) => JSON.parse(line)),
      ),
    );
  return { emitter, calls, sent, advance: (ms: number) => (clock += ms) };
}

describe("the telemetry emitter", () => {
  it("is a no-op without a stream", async () => {
    const emitter = createEmitter({ streamName: undefined });
    expect(emitter.enabled).toBe(false);
    emitter.emit(request(1));
    await emitter.flush();
    expect(emitter.stats().emitted).toBe(0);
  });

  it("holds records until a flush is due, then sends them in one call", async () => {
    const { emitter, calls, sent, advance } = harness();
    for (let i = 0; i < 10; i++) emitter.emit(request(i));
    await emitter.flushIfDue();
    expect(calls).toHaveLength(0);
    advance(1_000);
    await emitter.flushIfDue();
    expect(calls).toHaveLength(1);
    expect(sent().map((r) => r.request.latencyMs)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => n || undefined));
    expect(calls[0]?.[0]?.PartitionKey).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    await emitter.flushIfDue();
    expect(calls).toHaveLength(1);
  });

  it("sends as soon as 500 records wait, 500 a call", async () => {
    const { emitter, calls } = harness();
    for (let i = 0; i < 499; i++) emitter.emit(request(i));
    expect(calls).toHaveLength(0);
    emitter.emit(request(499));
    expect(calls.map((c) => c.length)).toEqual([500]);
    for (let i = 500; i < 1_200; i++) emitter.emit(request(i));
    // What came during the first call goes out when that call is done, the whole buffer at once.
    await emitter.flushIfDue();
    expect(calls.map((c) => c.length)).toEqual([500, 500, 200]);
    expect(emitter.stats()).toMatchObject({ emitted: 1_200, sent: 1_200, dropped: 0 });
  });

  it("drops what comes past a full buffer, counts it, and says so in the next flush", async () => {
    const { emitter, sent } = harness({ maxBuffered: 3 });
    for (let i = 1; i <= 5; i++) emitter.emit(request(i));
    await emitter.flush();
    const records = sent();
    expect(records.map((r) => r.kind)).toEqual(["request", "request", "request", "dropped"]);
    expect(records[3].dropped).toEqual({ count: "2" });
    expect(emitter.stats()).toMatchObject({ emitted: 5, sent: 4, dropped: 2 });
  });

  it("never throws when the stream fails: the records are counted as dropped", async () => {
    const { emitter, sent } = harness({ fail: (call) => (call === 1 ? new Error("throttled") : undefined) });
    emitter.emit(request(1));
    emitter.emit(request(2));
    await expect(emitter.flush()).resolves.toBeUndefined();
    expect(emitter.stats()).toMatchObject({ sent: 0, dropped: 2 });
    emitter.emit(request(3));
    await emitter.flush();
    expect(
      sent()
        .slice(2)
        .map((r) => r.kind),
    ).toEqual(["request", "dropped"]);
    expect(sent()[3].dropped.count).toBe("2");
  });

  it("counts entries Kinesis refused as dropped", async () => {
    const { emitter } = harness({ fail: () => 1 });
    emitter.emit(request(1));
    emitter.emit(request(2));
    await emitter.flush();
    expect(emitter.stats()).toMatchObject({ sent: 1, dropped: 1 });
  });

  it("packs records by default, a line each, 500 a stream record", async () => {
    const entries: PutRecordsRequestEntry[] = [];
    const emitter = createEmitter({
      streamName: "analytics",
      timer: false,
      put: async (_stream, sent) => {
        entries.push(...sent);
        return 0;
      },
    });
    for (let i = 1; i <= 1_200; i++) emitter.emit(request(i));
    await emitter.flush();
    const lines = entries.map(
      (e) =>
        Buffer.from(e.Data as Uint8Array)
          .toString("utf8")
          .split("\n").length,
    );
    expect(lines).toEqual([500, 500, 200]);
  });

  it("packs records a line each into fewer stream records when asked, counting what they carry", async () => {
    const { emitter, calls, sent } = harness({ recordsPerEntry: 100, fail: (call) => (call === 2 ? 1 : undefined) });
    for (let i = 1; i <= 250; i++) emitter.emit(request(i));
    await emitter.flush();
    expect(calls.map((c) => c.length)).toEqual([3]);
    expect(sent().map((r) => r.request.latencyMs)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(emitter.stats()).toMatchObject({ sent: 250, dropped: 0 });
    // Kinesis refusing one of two packed records loses the records it carried, counted.
    for (let i = 1; i <= 200; i++) emitter.emit(request(i));
    await emitter.flush();
    expect(emitter.stats()).toMatchObject({ sent: 350, dropped: 100 });
  });

  it("stamps each record when it is emitted, not when it is sent", async () => {
    const { emitter, sent, advance } = harness();
    emitter.emit(request(1));
    advance(5_000);
    emitter.emit(request(2));
    await emitter.flush();
    expect(sent().map((r) => r.at)).toEqual([new Date(1_000_000).toISOString(), new Date(1_005_000).toISOString()]);
  });

  it("makes one flush at a time: a flush asked for during another waits for it", async () => {
    const { emitter, calls } = harness();
    emitter.emit(request(1));
    const first = emitter.flush();
    emitter.emit(request(2));
    const second = emitter.flush();
    await Promise.all([first, second]);
    expect(calls.map((c) => c.length)).toEqual([1, 1]);
  });
});

describe("a telemetry record's bytes", () => {
  const trace = startTrace();
  const records: TelemetryRecord[] = [
    request(12.5),
    hopSpan({
      source: "accounts.balances",
      name: "applied",
      parent: trace,
      owner: { commandId: "c-1", correlationId: "c-1", aggregateId: "a-1" },
      startedAt: 1_700_000_000_000,
      endedAt: 1_700_000_000_042,
      subscriber: "accounts.balances",
    }).record,
    {
      kind: "outcome",
      source: "accounts-command-handler",
      commandId: "c-1",
      outcome: { command: "Deposit", status: "accepted", attempts: 1, queuedMs: 3.5, settledMs: 40 },
    },
    { kind: "apply", source: "x", apply: { subscriber: "x", eventType: "E", aggregateVersion: 7, lagMs: 1 } },
    { kind: "park", source: "x", park: { subscriber: "x", eventId: "e", reason: "boom" } },
    { kind: "dead_letter", source: "core-relay", deadLetter: { queue: "core-relay-failures", reason: "bad" } },
    { kind: "dropped", source: "api", dropped: { count: 3 } },
  ];

  it.each(records.map((r) => [r.kind, r] as const))("are the contract's Protobuf JSON (%s)", (_, record) => {
    const json = recordJson(record, "2026-12-02T10:00:00.000Z");
    const decoded = fromJsonString(TelemetryRecordSchema, json);
    expect(JSON.parse(toJsonString(TelemetryRecordSchema, decoded))).toEqual(JSON.parse(json));
    expect(decoded.kind).toBe(record.kind);
    expect(decoded.at).toBe("2026-12-02T10:00:00.000Z");
  });
});
