/**
 * The analytics bus over the wire (law K): TelemetryRecord JSON put on its stream becomes
 * Parquet files in its bucket, in Firehose's hour layout, read by `queryAnalytics`, by
 * `hopLatencies` and by `canon archive sql --bus analytics`; a record that is not telemetry is
 * skipped, and a restart of the system neither loses nor doubles a record.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { DeleteObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  athenaAnalyticsTarget,
  hopLatencies,
  localAnalyticsTarget,
  queryAnalytics,
} from "../../shared/analytics/sql.ts";
import { kinesisClient, s3Client } from "../../shared/aws/clients.ts";
import { runCanon } from "../support/cli.ts";
import { removeDataDir, startSystem, type TestSystem, tempDataDir, waitFor } from "../support/system.ts";

const dataDir = tempDataDir("analytics");
let system: TestSystem;
// This run's records, told apart from the telemetry the system emits itself.
const source = `test-${randomUUID().slice(0, 8)}`;

const at = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
const span = (name: string, ms: number, subscriber?: string) => ({
  kind: "span",
  at: at(0),
  source,
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: randomUUID().replaceAll("-", "").slice(0, 16),
  commandId: "c-1",
  span: { name, startedAt: at(ms + 10), endedAt: at(10), ...(subscriber && { subscriber }) },
});
const request = (status: number, latencyMs: number) => ({
  kind: "request",
  at: at(0),
  source,
  request: { method: "POST", route: "/commands/:service/:command", status, latencyMs },
});
const apply = {
  kind: "apply",
  at: at(0),
  source,
  apply: { subscriber: "accounts.balances", aggregateVersion: "7", lagMs: 12.5 },
};

async function put(records: readonly unknown[]): Promise<void> {
  const stream = system.plan.telemetry[0]?.streamName as string;
  const result = await kinesisClient().send(
    new PutRecordsCommand({
      StreamName: stream,
      Records: records.map((r) => ({
        Data: Buffer.from(typeof r === "string" ? r : JSON.stringify(r)),
        PartitionKey: randomUUID(),
      })),
    }),
  );
  expect(result.FailedRecordCount ?? 0).toBe(0);
}

const target = () => ({
  target: localAnalyticsTarget(system.plan) as NonNullable<ReturnType<typeof localAnalyticsTarget>>,
});
const countsByKind = async () => {
  const result = await queryAnalytics(
    `SELECT kind, count(*) AS n FROM telemetry WHERE source = '${source}' GROUP BY kind ORDER BY kind`,
    target(),
  );
  return Object.fromEntries(result.rows.map((r) => [r.kind, Number(r.n)]));
};
const waitForCounts = (expected: Record<string, number>) =>
  waitFor(
    async () => {
      const counts = await countsByKind();
      return JSON.stringify(counts) === JSON.stringify(expected) ? counts : undefined;
    },
    `telemetry counts ${JSON.stringify(expected)}`,
  );

beforeAll(async () => {
  system = await startSystem({ dataDir });
}, 120_000);

afterAll(async () => {
  await system?.stop();
  removeDataDir(dataDir);
});

describe("the analytics bus", () => {
  it("stores telemetry as Parquet files in the hour layout, skipping what is not telemetry", async () => {
    await put([
      span("accepted", 3),
      span("queued", 20),
      span("applied", 40, "accounts.balances"),
      span("applied", 60, "accounts.balances"),
      request(202, 4.5),
      request(400, 1.25),
      apply,
      "not json",
      { kind: "span" }, // no time: not a TelemetryRecord
      // Packed, a line each (as the emitter may send them): two records in one stream record, one bad line.
      [request(204, 2), "{oops", apply].map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n"),
    ]);
    expect(await waitForCounts({ apply: 2, request: 3, span: 4 })).toBeDefined();

    const store = system.plan.telemetry[0];
    const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: store?.bucket, Prefix: store?.prefix }));
    const keys = (listed.Contents ?? []).map((o) => o.Key ?? "");
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys)
      expect(key).toMatch(/^records\/dt=\d{4}-\d{2}-\d{2}-\d{2}\/canon-analytics-shardId-\d+-\d+\.parquet$/);

    // Typed columns, each detail flattened under its kind.
    const rows = await queryAnalytics(
      `SELECT request_status, request_latency_ms, typeof("at") AS at_type FROM telemetry WHERE source = '${source}' AND kind = 'request' ORDER BY request_status`,
      target(),
    );
    expect(rows.rows).toEqual([
      { request_status: 202, request_latency_ms: 4.5, at_type: "TIMESTAMP" },
      { request_status: 204, request_latency_ms: 2, at_type: "TIMESTAMP" },
      { request_status: 400, request_latency_ms: 1.25, at_type: "TIMESTAMP" },
    ]);
    const applied = await queryAnalytics(
      `SELECT apply_subscriber, apply_aggregate_version, apply_lag_ms FROM telemetry WHERE source = '${source}' AND kind = 'apply'`,
      target(),
    );
    expect(applied.rows).toEqual([
      { apply_subscriber: "accounts.balances", apply_aggregate_version: "7", apply_lag_ms: 12.5 },
      { apply_subscriber: "accounts.balances", apply_aggregate_version: "7", apply_lag_ms: 12.5 },
    ]);
  });

  it("gives each hop's latency percentiles over the last minutes", async () => {
    const hops = (await hopLatencies(5, target())).filter((h) => h.hop !== "accepted" || h.count > 0);
    const applied = hops.find((h) => h.hop === "applied" && h.subscriber === "accounts.balances");
    expect(applied?.count).toBeGreaterThanOrEqual(2);
    expect(applied?.p50Ms).toBeGreaterThan(0);
    expect(applied?.p99Ms).toBeGreaterThanOrEqual(applied?.p50Ms ?? 0);
    // In a command's order: accepted before queued before applied.
    const order = hops.map((h) => h.hop);
    expect(order.indexOf("accepted")).toBeLessThan(order.indexOf("queued"));
    expect(order.indexOf("queued")).toBeLessThan(order.indexOf("applied"));
    await expect(hopLatencies(0, target())).rejects.toThrow(/minutes must be a number above 0/);
  });

  it("answers canon archive sql --bus analytics, and refuses to verify a telemetry bus", async () => {
    const sql = await runCanon(
      dataDir,
      "archive",
      "sql",
      "--bus",
      "analytics",
      "--json",
      `SELECT kind, count(*) AS n FROM telemetry WHERE source = '${source}' GROUP BY kind ORDER BY kind`,
    );
    expect(sql.stderr).toBe("");
    expect(JSON.parse(sql.stdout)).toEqual([
      { kind: "apply", n: "2" },
      { kind: "request", n: "3" },
      { kind: "span", n: "4" },
    ]);
    const verify = await runCanon(dataDir, "archive", "verify", "--bus", "analytics");
    expect(verify.code).toBe(2);
    expect(verify.stderr).toMatch(/"analytics" is a telemetry bus: it has no archive to verify/);
  });

  it("holds the telemetry of a bank workload, counted by kind with canon archive sql", async () => {
    const opened = await system.command("accounts", "OpenAccount", { accountId: `a-${source}`, owner: "Ada" });
    expect(opened.status).toBe("accepted");
    const deposited = await system.command("accounts", "Deposit", { accountId: `a-${source}`, amountCents: 500 });
    expect(deposited.status).toBe("accepted");
    // The system's own records (not this test's): the requests, the hops and the outcomes of those commands.
    const ofCommand = `command_id IN ('${opened.commandId}', '${deposited.commandId}')`;
    await waitFor(async () => {
      const { rows } = await queryAnalytics(
        `SELECT count(DISTINCT command_id) AS commands FROM telemetry WHERE kind = 'outcome' AND ${ofCommand}`,
        target(),
      );
      return Number(rows[0]?.commands) === 2 ? true : undefined;
    }, "both commands' outcomes on the analytics bus");
    const sql = await runCanon(
      dataDir,
      "archive",
      "sql",
      "--bus",
      "analytics",
      "--json",
      `SELECT kind, count(*) AS n FROM telemetry WHERE ${ofCommand} OR kind = 'request' GROUP BY kind ORDER BY kind`,
    );
    expect(sql.stderr).toBe("");
    const kinds = Object.fromEntries(
      (JSON.parse(sql.stdout) as { kind: string; n: string }[]).map((r) => [r.kind, Number(r.n)]),
    );
    expect(kinds.outcome).toBe(2);
    expect(kinds.span).toBeGreaterThanOrEqual(4);
    expect(kinds.request).toBeGreaterThanOrEqual(2);
  });

  it("loses and doubles nothing across a restart", async () => {
    await system.stop();
    system = await startSystem({ dataDir });
    await put([request(500, 9), request(503, 10), span("decided", 5)]);
    expect(await waitForCounts({ apply: 2, request: 5, span: 5 })).toBeDefined();
  }, 120_000);
});

describe("the local sink, delivered a batch again", () => {
  it("replaces the file a crash left unmarked and skips what its marker covers", async () => {
    const crashSource = `${source}-crash`;
    const record = (seq: number) => ({
      eventID: `shardId-000000000009:${seq}`,
      eventSource: "aws:kinesis",
      kinesis: {
        sequenceNumber: String(seq),
        partitionKey: "k",
        approximateArrivalTimestamp: Date.now() / 1000,
        data: Buffer.from(JSON.stringify({ ...request(200, seq), source: crashSource })).toString("base64"),
      },
    });
    const batch = (from: number, to: number) => ({
      Records: Array.from({ length: to - from + 1 }, (_, i) => record(from + i)),
    });
    const store = system.plan.telemetry[0];
    Object.assign(process.env, {
      CANON_ANALYTICS_BUCKET: store?.bucket,
      CANON_ANALYTICS_PREFIX: store?.prefix,
      CANON_STREAM_NAME: "crash-test",
    });
    // A fresh sink (a new Lambda instance) reads its marker from the bucket.
    const freshSink = async () => {
      vi.resetModules();
      return (await import("../../shared/analytics/local-sink.ts")).handler as unknown as (e: unknown) => Promise<void>;
    };
    const markerKey = "sink/crash-test/shardId-000000000009.json";
    await (await freshSink())(batch(1, 4));
    const count = async () =>
      (
        await queryAnalytics(
          `SELECT count(*) AS n, count(DISTINCT request_latency_ms) AS distinct_n FROM telemetry WHERE source = '${crashSource}'`,
          target(),
        )
      ).rows;
    // Read once, so this process holds the file: replaced below, it must be read again.
    expect(await count()).toEqual([{ n: "4", distinct_n: "4" }]);
    // The crash: the file of 1..4 is written, its marker not (as if the process died between them).
    await s3Client().send(new DeleteObjectCommand({ Bucket: store?.bucket, Key: markerKey }));
    const sink = await freshSink();
    await sink(batch(1, 6)); // delivered again from the checkpoint, with more behind it
    await sink(batch(3, 8)); // and again, overlapping what the marker now covers
    expect(await count()).toEqual([{ n: "8", distinct_n: "8" }]);
  });
});

describe("the analytics bus on AWS, through Athena's wire protocol", () => {
  /** A stand-in for Athena: answers the three calls a query takes, and remembers what it was asked. */
  async function fakeAthena(outcome: "SUCCEEDED" | "FAILED") {
    const started: Record<string, unknown>[] = [];
    let polls = 0;
    const server = createServer(async (request, response) => {
      let body = "";
      for await (const chunk of request) body += chunk;
      const target = String(request.headers["x-amz-target"]).replace("AmazonAthena.", "");
      const input = JSON.parse(body || "{}") as Record<string, unknown>;
      const answer = (value: unknown) => {
        response.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
        response.end(JSON.stringify(value));
      };
      const row = (...values: string[]) => ({ Data: values.map((v) => ({ VarCharValue: v })) });
      const columns = {
        ColumnInfo: [
          { Name: "kind", Type: "varchar" },
          { Name: "n", Type: "bigint" },
        ],
      };
      if (target === "StartQueryExecution") {
        started.push(input);
        return answer({ QueryExecutionId: "q-1" });
      }
      if (target === "GetQueryExecution") {
        polls += 1;
        const state = polls < 2 ? "RUNNING" : outcome;
        return answer({
          QueryExecution: {
            QueryExecutionId: "q-1",
            Status: { State: state, ...(state === "FAILED" && { StateChangeReason: "COLUMN_NOT_FOUND: line 1:8" }) },
          },
        });
      }
      if (target === "GetQueryResults" && input.NextToken === undefined) {
        return answer({
          ResultSet: { ResultSetMetadata: columns, Rows: [row("kind", "n"), row("request", "2")] },
          NextToken: "page-2",
        });
      }
      if (target === "GetQueryResults") {
        return answer({ ResultSet: { ResultSetMetadata: columns, Rows: [row("span", "4")] } });
      }
      response.writeHead(400, { "content-type": "application/x-amz-json-1.1" });
      response.end(JSON.stringify({ __type: "InvalidRequestException", message: `unexpected ${target}` }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, started, close: () => new Promise((r) => server.close(r)) };
  }

  it("runs canon archive sql --bus analytics --aws in the bus's workgroup and database, every result page read", async () => {
    const athena = await fakeAthena("SUCCEEDED");
    process.env.AWS_ENDPOINT_URL_ATHENA = athena.url;
    try {
      const sql = "SELECT kind, count(*) AS n FROM telemetry GROUP BY kind";
      const result = await runCanon(
        dataDir,
        "archive",
        "sql",
        "--bus",
        "analytics",
        "--aws",
        "--region",
        "eu-west-1",
        "--json",
        sql,
      );
      expect(result.stderr).toBe("");
      expect(JSON.parse(result.stdout)).toEqual([
        { kind: "request", n: "2" },
        { kind: "span", n: "4" },
      ]);
      expect(athena.started).toEqual([
        expect.objectContaining({
          QueryString: sql,
          WorkGroup: "canon-analytics-telemetry",
          QueryExecutionContext: { Database: "canon_analytics" },
        }),
      ]);

      // The console's percentiles, in Athena's dialect, reading only the hours asked about.
      const store = system.plan.telemetry[0];
      if (store === undefined) throw new Error("no telemetry bus");
      await hopLatencies(15, { target: athenaAnalyticsTarget(store) });
      const asked = String(athena.started[1]?.QueryString);
      expect(asked).toContain("approx_percentile(ms, 0.99)");
      expect(asked).toMatch(/dt >= '\d{4}-\d{2}-\d{2}-\d{2}'/);
    } finally {
      delete process.env.AWS_ENDPOINT_URL_ATHENA;
      await athena.close();
    }
  });

  it("says why Athena failed a query, exit status 1", async () => {
    const athena = await fakeAthena("FAILED");
    process.env.AWS_ENDPOINT_URL_ATHENA = athena.url;
    try {
      const result = await runCanon(
        dataDir,
        "archive",
        "sql",
        "--bus",
        "analytics",
        "--aws",
        "--region",
        "eu-west-1",
        "SELECT nope FROM telemetry",
      );
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/canon archive sql: Athena query q-1 failed: COLUMN_NOT_FOUND: line 1:8/);
      const refused = await runCanon(dataDir, "archive", "sql", "--aws", "SELECT 1");
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--aws queries a telemetry bus/);
    } finally {
      delete process.env.AWS_ENDPOINT_URL_ATHENA;
      await athena.close();
    }
  });
});
