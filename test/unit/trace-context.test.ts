/** W3C Trace Context: what the API takes from a client, and what every hop carries on. */
import { describe, expect, it } from "vitest";
import { checkCommandMessage } from "../../shared/domain/command-message.ts";
import { buildCommit, checkCommit } from "../../shared/events/envelope.ts";
import {
  childContext,
  continueOrStart,
  formatTraceparent,
  hopSpanId,
  parseTraceparent,
  startTrace,
} from "../../shared/telemetry/trace-context.ts";

const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe("traceparent", () => {
  it("is read into its trace id, span id and flags, and written back the same", () => {
    const context = parseTraceparent(valid);
    expect(context).toEqual({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", flags: "01" });
    expect(formatTraceparent(context as NonNullable<typeof context>)).toBe(valid);
  });

  it("is read case-insensitively and trimmed, as header values are", () => {
    expect(parseTraceparent(` ${valid.toUpperCase()} `)?.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
  });

  it.each([
    ["absent", undefined],
    ["empty", ""],
    ["not a traceparent", "hello"],
    ["an all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"],
    ["an all-zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"],
    ["version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ["version 00 with more fields", `${valid}-extra`],
    ["a short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"],
    ["non-hex characters", "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"],
  ])("is refused when %s (a new trace starts instead)", (_, header) => {
    expect(parseTraceparent(header)).toBeUndefined();
    const started = continueOrStart(header);
    expect(started.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(started.spanId).toMatch(/^[0-9a-f]{16}$/);
  });

  it("of a later version is read by its first four fields, as the spec asks", () => {
    expect(parseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes")?.spanId).toBe(
      "00f067aa0ba902b7",
    );
  });
});

describe("trace contexts", () => {
  it("start with fresh ids each time, sampled", () => {
    const a = startTrace();
    const b = startTrace();
    expect(a.traceId).not.toBe(b.traceId);
    expect(a.flags).toBe("01");
    expect(parseTraceparent(formatTraceparent(a))).toEqual(a);
  });

  it("continue the same trace in a child span", () => {
    const parent = startTrace();
    const child = childContext(parent);
    expect(child.traceId).toBe(parent.traceId);
    expect(child.spanId).not.toBe(parent.spanId);
    expect(childContext(parent, "00000000000000aa").spanId).toBe("00000000000000aa");
  });

  it("name a framework hop by what it is: the same hop, the same span id; another hop, another", () => {
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    expect(hopSpanId(trace, "c-1", "decided", 1)).toBe(hopSpanId(trace, "c-1", "decided", 1));
    expect(hopSpanId(trace, "c-1", "decided", 1)).toMatch(/^[0-9a-f]{16}$/);
    expect(hopSpanId(trace, "c-1", "decided", 2)).not.toBe(hopSpanId(trace, "c-1", "decided", 1));
    expect(hopSpanId(trace, "c-2", "decided", 1)).not.toBe(hopSpanId(trace, "c-1", "decided", 1));
  });
});

describe("the traceparent a command carries", () => {
  const meta = {
    commandId: "c-1",
    attempt: 1,
    service: "accounts",
    bus: "core",
    aggregateType: "Account",
    aggregateId: "a-1",
    expectedVersion: 0,
    correlationId: "c-1",
    causationId: "c-1",
    now: new Date(0),
  };

  it("is on its commit and on each of the commit's events, and survives the commit's check", () => {
    const commit = buildCommit("events", { ...meta, traceparent: valid }, [
      { type: "AccountOpened", data: { accountId: "a-1" } },
      { type: "FundsDeposited", data: { accountId: "a-1", amountCents: 5 } },
    ]);
    expect(commit.traceparent).toBe(valid);
    expect(commit.events.map((e) => e.traceparent)).toEqual([valid, valid]);
    expect(checkCommit(JSON.parse(JSON.stringify(commit)))).toEqual(commit);
  });

  it("is absent from a commit whose command had none", () => {
    const commit = buildCommit("events", meta, [{ type: "AccountOpened", data: { accountId: "a-1" } }]);
    expect("traceparent" in commit).toBe(false);
    expect("traceparent" in (commit.events[0] ?? {})).toBe(false);
  });

  it("is kept on a command message, and one too long is refused", () => {
    const message = {
      commandId: "c-1",
      service: "accounts",
      command: { type: "Deposit" },
      aggregateId: "a-1",
      receivedAt: "2026-12-02T10:00:00.000Z",
      correlationId: "c-1",
      causationId: "c-1",
    };
    expect(checkCommandMessage({ ...message, traceparent: valid }).traceparent).toBe(valid);
    expect(() => checkCommandMessage({ ...message, traceparent: "x".repeat(513) })).toThrow();
  });
});
