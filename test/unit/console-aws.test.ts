/** The pure parts of the console's AWS source: metrics into samples, ages into lags, executions into jobs, mappings into states. */
import { describe, expect, it } from "vitest";
import { app } from "../../functions/app.ts";
import type { DeployedApp } from "../../shared/console/aws-discovery.ts";
import { consoleMetricQueries, latestIteratorAge, samplesFromMetrics } from "../../shared/console/aws-metrics.ts";
import { statusFromMapping } from "../../shared/console/aws-source.ts";
import { jobFromExecution } from "../../shared/console/aws-warm-ups.ts";
import { lagByAgeOf } from "../../shared/console/bus-watch.ts";
import { planApp } from "../../shared/plan.ts";

const plan = planApp(app);
const relay = plan.functions.find((f) => f.role === "relay" && f.source.kind === "kinesis" && f.source.bus === "core");
const archiver = plan.functions.find(
  (f) => f.role === "archiver" && f.source.kind === "kinesis" && f.source.bus === "core",
);

function deployed(withFunctions: boolean): DeployedApp {
  const fns = [relay, archiver].flatMap((f) => (f ? [f] : []));
  return {
    region: "eu-west-1",
    resources: {
      streamNames: new Map(plan.streams.map((s) => [s.bus, s.name])),
      streamArns: new Map(),
      topicArns: new Map(),
      queueUrls: new Map(plan.queues.map((q) => [q.id, `https://sqs.eu-west-1.amazonaws.com/1/${q.name}`])),
      deadLetterQueueUrls: new Map(
        plan.queues.map((q) => [q.id, `https://sqs.eu-west-1.amazonaws.com/1/${q.deadLetterQueueName}`]),
      ),
      tableNames: new Map(),
      archiveBuckets: new Map(),
    },
    functions: new Map(
      withFunctions ? fns.map((f) => [f.id, { id: f.id, arn: `arn:x:${f.id}`, name: `Phys-${f.id}` }]) : [],
    ),
    warmUps: new Map(),
    missing: [],
  };
}

describe("the charts' CloudWatch queries", () => {
  const projections = [{ name: "accounts.balances", queueId: "accounts-balances" }];

  it("ask for each bus's rate and its readers' iterator age by physical name, and each queue's depth", () => {
    const layout = consoleMetricQueries(plan, deployed(true), projections);
    const ids = layout.queries.map((q) => q.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z][a-zA-Z0-9_]*$/);
    expect(layout.queries).toContainEqual(
      expect.objectContaining({ name: "IteratorAge", dimensions: { FunctionName: `Phys-${relay?.id}` } }),
    );
    expect(layout.queries).toContainEqual(
      expect.objectContaining({ namespace: "AWS/SQS", dimensions: { QueueName: "canon-accounts-balances.fifo" } }),
    );
    // A reader not deployed has no iterator age to ask for.
    expect(consoleMetricQueries(plan, deployed(false), projections).queries.some((q) => q.name === "IteratorAge")).toBe(
      false,
    );
  });

  it("become one sample per minute, with missing points as 0 and lags in ms", () => {
    const layout = consoleMetricQueries(plan, deployed(true), projections);
    const idOf = (pick: (m: unknown) => boolean) => [...layout.meaning].find(([, m]) => pick(m))?.[0] ?? "";
    const incoming = idOf((m) => (m as { kind: string }).kind === "incoming");
    const relayAge = idOf((m) => (m as { reader?: string }).reader === "relay");
    const visible = idOf((m) => (m as { state?: string }).state === "visible");
    const points = new Map([
      [incoming, [{ t: 60_000, value: 300 }]],
      [relayAge, [{ t: 120_000, value: 2_500 }]],
      [visible, [{ t: 60_000, value: 4 }]],
    ]);
    const samples = samplesFromMetrics(layout, points, 60);
    expect(samples.map((s) => s.t)).toEqual([60_000, 120_000]);
    expect(samples[0]?.buses.core).toEqual({ recordsPerSecond: 5, relayLag: 0, archiverLag: 0, archiveLag: 0 });
    expect(samples[1]?.buses.core?.relayLag).toBe(2_500);
    expect(samples[0]?.projections["accounts.balances"]).toBe(4);
    expect(samples.every((s) => s.lagUnit === "ms")).toBe(true);
    expect(latestIteratorAge(layout, points, "core", "relay", 150_000, 60_000)).toBe(2_500);
    // A point older than allowed says nothing of now: an idle reader sends none.
    expect(latestIteratorAge(layout, points, "core", "relay", 500_000, 60_000)).toBe(0);
  });
});

describe("a lag known by its age", () => {
  const arrivals = [10, 20, 30, 40].map((at, i) => ({ seq: String(i), at }));

  it("counts the records that arrived within the age", () => {
    expect(lagByAgeOf({ arrivals, dropped: 0 }, 15, 45, undefined)).toEqual({ records: 2, ageMs: 15 });
    expect(lagByAgeOf({ arrivals, dropped: 0 }, 100, 45, undefined)).toEqual({ records: 4, ageMs: 100 });
  });

  it("is no lag on a shard where nothing arrived within the age (the age is the oldest over all shards)", () => {
    expect(lagByAgeOf({ arrivals, dropped: 0 }, 4, 45, undefined)).toEqual({ records: 0, ageMs: 0 });
  });

  it("is a lower bound when the watch started after the reader's position or forgot records", () => {
    expect(lagByAgeOf({ arrivals, dropped: 0 }, 100, 45, 5)).toMatchObject({ records: 4, atLeast: true });
    expect(lagByAgeOf({ arrivals, dropped: 3 }, 100, 45, undefined)).toMatchObject({ atLeast: true });
  });
});

describe("a warm-up execution as a console job", () => {
  const start = new Date("2026-11-26T10:00:00Z");
  const chunk = (events: number, total: number) =>
    JSON.stringify({ done: false, events, cursor: { events: total, objects: 1, bytes: total * 100 } });

  it("reads progress from the newest chunk's answer", () => {
    const job = jobFromExecution(
      { executionArn: "arn", name: "console-1", status: "RUNNING", startDate: start },
      "accounts.activity",
      [
        { type: "ExecutionStarted", timestamp: start, id: 1 },
        {
          type: "LambdaFunctionSucceeded",
          timestamp: new Date(start.getTime() + 10_000),
          id: 2,
          lambdaFunctionSucceededEventDetails: { output: chunk(100, 100) },
        },
        {
          type: "LambdaFunctionSucceeded",
          timestamp: new Date(start.getTime() + 20_000),
          id: 3,
          lambdaFunctionSucceededEventDetails: { output: chunk(50, 150) },
        },
      ],
      300,
      start.getTime() + 30_000,
    );
    expect(job).toMatchObject({ state: "running", events: 150, progress: { phase: "replay", events: 150 } });
    // Bytes read, and the archive's size estimated from its record count (300 archived).
    expect(job.progress).toMatchObject({ bytes: 15_000, totalBytes: 30_000 });
    expect(job.progress?.eventsPerSecond).toBeCloseTo(5);
    expect(job.progress?.etaSeconds).toBeCloseTo(30);
    expect(job.messages).toEqual([
      "10:00:00 started",
      "10:00:10 chunk applied 100 events (100 in all)",
      "10:00:20 chunk applied 50 events (150 in all)",
    ]);
  });

  it("names the failure of a failed execution, and never claims less than it applied", () => {
    const job = jobFromExecution(
      {
        executionArn: "arn",
        name: "console-2",
        status: "FAILED",
        startDate: start,
        stopDate: new Date(start.getTime() + 5_000),
        error: "States.TaskFailed",
        cause: "AccessDenied",
      },
      "accounts.activity",
      [
        {
          type: "LambdaFunctionSucceeded",
          timestamp: start,
          id: 2,
          lambdaFunctionSucceededEventDetails: { output: chunk(9, 9) },
        },
        {
          type: "ExecutionFailed",
          timestamp: start,
          id: 3,
          executionFailedEventDetails: { error: "States.TaskFailed" },
        },
      ],
      0,
      start.getTime() + 60_000,
    );
    expect(job.state).toBe("failed");
    expect(job.error).toBe("FAILED: States.TaskFailed AccessDenied");
    expect(job.progress).toMatchObject({ phase: "replay", events: 9 });
    expect(job.progress?.etaSeconds).toBeUndefined();
    expect(job.finishedAt).toBe("2026-11-26T10:00:05.000Z");
  });

  it("ignores an output that is not a chunk's answer", () => {
    const job = jobFromExecution(
      { executionArn: "arn", name: "x", status: "RUNNING", startDate: start },
      "p",
      [
        {
          type: "TaskSucceeded",
          timestamp: start,
          id: 2,
          taskSucceededEventDetails: { resourceType: "lambda", resource: "invoke", output: "not json{" },
        },
      ],
      10,
      start.getTime(),
    );
    expect(job.events).toBe(0);
  });
});

describe("a consumer's state from its event source mapping", () => {
  const queue = { source: { kind: "sqs", queueId: "q", batchSize: 10, maxConcurrency: 4 } } as const;
  it("maps each mapping state, and an absent mapping or function to stopped", () => {
    expect(statusFromMapping(queue, true, { State: "Enabled" })).toBe("running");
    expect(statusFromMapping(queue, true, { State: "Enabling" })).toBe("attaching");
    expect(statusFromMapping(queue, true, { State: "Disabled" })).toBe("paused");
    expect(statusFromMapping({ ...queue, startsDetached: true }, true, { State: "Disabled" })).toBe("detached");
    expect(statusFromMapping(queue, true, undefined)).toBe("stopped");
    expect(statusFromMapping(queue, false, { State: "Enabled" })).toBe("stopped");
    expect(statusFromMapping(queue, true, { State: "Deleting" })).toBe("stopped");
    expect(statusFromMapping({ source: { kind: "http" } } as never, false, undefined)).toBe("served by the API");
  });
});
