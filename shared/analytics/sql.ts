/**
 * SQL over the analytics bus (law K): one view `telemetry`, one row per TelemetryRecord, the same
 * columns locally and on AWS (shared/analytics/schema.ts). Locally DuckDB reads the Parquet files
 * of the local bucket; on AWS Athena reads the Glue table Firehose fills (the `telemetry` view is
 * in the bus's Glue database). `hopLatencies` is what the console's percentile panel shows.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import type { QueryResult } from "../archive/sql.ts";
import { s3Client } from "../aws/clients.ts";
import type { AppPlan, PlannedTelemetryStore } from "../plan.ts";
import { runAthenaQuery } from "./athena.ts";
import { hourPartition, hourPartitionsBetween } from "./layout.ts";
import { sqlPath } from "./local-sink.ts";
import { type Dialect, duckColumns, telemetryViewSql } from "./schema.ts";

export type { QueryResult } from "../archive/sql.ts";

/** Where the analytics bus's files are, and how to query them. */
export type AnalyticsTarget =
  /** The Parquet files in a bucket (the local cloud, or LocalStack), queried with DuckDB. */
  | { readonly kind: "local"; readonly bucket: string; readonly prefix: string }
  /** The Glue database and Athena workgroup of a deployment. */
  | { readonly kind: "athena"; readonly database: string; readonly workGroup: string };

export interface AnalyticsQueryOptions {
  readonly target: AnalyticsTarget;
  /**
   * Reads only the files that can hold records from this time on: those of the hour partitions
   * since then, written since then (a query's own WHERE still decides which rows). @default every file
   */
  readonly since?: Date;
}

/** The analytics target of a plan's telemetry bus in the local cloud (its names are the physical ones). */
export function localAnalyticsTarget(plan: AppPlan): AnalyticsTarget | undefined {
  const store = plan.telemetry[0];
  return store === undefined ? undefined : { kind: "local", bucket: store.bucket, prefix: store.prefix };
}

/** The Athena target of a deployed telemetry bus. */
export function athenaAnalyticsTarget(store: PlannedTelemetryStore): AnalyticsTarget {
  return { kind: "athena", database: store.database, workGroup: store.workGroup };
}

/** Runs one query over the table `telemetry`. */
export async function queryAnalytics(sql: string, options: AnalyticsQueryOptions): Promise<QueryResult> {
  const target = options.target;
  if (target.kind === "athena") return runAthenaQuery(sql, target);
  return queryLocal(sql, target, options.since);
}

/** One hop's latency over a time window: count and percentiles of its spans' durations. */
export interface HopLatency {
  readonly hop: string;
  /** For "applied" and "reacted": the projection or reactor. */
  readonly subscriber?: string;
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
}

/** The hops in a command's order, for sorting. */
const hopOrder = ["accepted", "queued", "decided", "appended", "relayed", "applied", "reacted"];

/** Per hop (and subscriber), the latency percentiles of the span records of the last `minutes`. */
export async function hopLatencies(minutes: number, options: AnalyticsQueryOptions): Promise<HopLatency[]> {
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 7 * 24 * 60) {
    throw new RangeError(`minutes must be a number above 0 and at most a week (10080), not ${minutes}`);
  }
  const since = new Date(Date.now() - minutes * 60_000);
  const result = await queryAnalytics(hopLatencySql(since, options.target.kind === "athena" ? "athena" : "duckdb"), {
    ...options,
    since,
  });
  return result.rows
    .map((row) => ({
      hop: String(row.hop),
      ...(row.subscriber !== null && row.subscriber !== undefined && row.subscriber !== ""
        ? { subscriber: String(row.subscriber) }
        : {}),
      count: Number(row.count),
      p50Ms: Number(row.p50_ms),
      p90Ms: Number(row.p90_ms),
      p99Ms: Number(row.p99_ms),
    }))
    .sort(
      (a, b) =>
        rank(a.hop) - rank(b.hop) ||
        (a.subscriber ?? "").localeCompare(b.subscriber ?? "") ||
        a.hop.localeCompare(b.hop),
    );
}

const rank = (hop: string) => {
  const i = hopOrder.indexOf(hop);
  return i < 0 ? hopOrder.length : i;
};

/** The percentile query, in either dialect (Athena has approximate percentiles only). */
export function hopLatencySql(since: Date, dialect: Dialect): string {
  const iso = since.toISOString();
  const at =
    dialect === "athena" ? `CAST(from_iso8601_timestamp('${iso}') AS timestamp(3))` : `CAST('${iso}' AS TIMESTAMP)`;
  const percentile = (p: number) => (dialect === "athena" ? `approx_percentile(ms, ${p})` : `quantile_cont(ms, ${p})`);
  return `SELECT hop, subscriber, count(*) AS count,
  ${percentile(0.5)} AS p50_ms, ${percentile(0.9)} AS p90_ms, ${percentile(0.99)} AS p99_ms
FROM (
  SELECT span_name AS hop, coalesce(span_subscriber, '') AS subscriber,
    CAST(date_diff('millisecond', span_started_at, span_ended_at) AS DOUBLE) AS ms
  FROM telemetry
  WHERE kind = 'span' AND dt >= '${hourPartition(since).slice(3)}' AND "at" >= ${at}
    AND span_started_at IS NOT NULL AND span_ended_at IS NOT NULL
) AS spans
GROUP BY hop, subscriber`;
}

/** DuckDB over the bucket's Parquet files (those of the hours from `since`, or all). */
async function queryLocal(
  sql: string,
  target: { readonly bucket: string; readonly prefix: string },
  since: Date | undefined,
): Promise<QueryResult> {
  const prefixes =
    since === undefined
      ? [target.prefix]
      : hourPartitionsBetween(since, new Date()).map((p) => `${target.prefix}${p}/`);
  const files: string[] = [];
  for (const prefix of prefixes) {
    for (const object of await listParquet(target.bucket, prefix, since)) {
      files.push(await fetchFile(target.bucket, object));
    }
  }
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  try {
    const columns = duckColumns()
      .map(({ name, type }) => `"${name}" ${type}`)
      .join(", ");
    await connection.run(`CREATE TABLE records (${columns}, "dt" VARCHAR)`);
    if (files.length > 0) {
      const list = files.map((f) => `'${sqlPath(f)}'`).join(", ");
      await connection.run(
        `INSERT INTO records BY NAME SELECT * FROM read_parquet([${list}], hive_partitioning = true, hive_types_autocast = false, union_by_name = true)`,
      );
    }
    await connection.run(`CREATE VIEW telemetry AS ${telemetryViewSql("records", "duckdb")}`);
    const reader = await connection.runAndReadAll(sql);
    return { columns: reader.columnNames(), rows: reader.getRowObjectsJson() as Record<string, unknown>[] };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/**
 * The files this process fetched, by bucket and key, kept while their ETag holds (a file is
 * replaced only when the sink writes its batch again): a console refreshing its panel fetches
 * only the files written since. In a folder of their own, under their keys (DuckDB reads the
 * hour partition from the path), removed when the process exits.
 */
const fetched = new Map<string, string>();
let cacheFolder: string | undefined;

async function fetchFile(bucket: string, object: ListedFile): Promise<string> {
  if (cacheFolder === undefined) {
    const folder = mkdtempSync(join(tmpdir(), "canon-analytics-"));
    process.once("exit", () => rmSync(folder, { recursive: true, force: true }));
    cacheFolder = folder;
  }
  const file = join(cacheFolder, bucket, object.key);
  const id = `${bucket}/${object.key}`;
  if (fetched.get(id) === object.etag) return file;
  mkdirSync(dirname(file), { recursive: true });
  // Written aside, then renamed: a query running beside this one never reads half a file.
  const partial = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
  writeFileSync(partial, await download(bucket, object.key));
  renameSync(partial, file);
  fetched.set(id, object.etag);
  return file;
}

interface ListedFile {
  readonly key: string;
  readonly etag: string;
}

/**
 * The Parquet files under a prefix; from `since` on, only those written since: a file is written
 * after its records arrived, and a record is emitted before it arrives, so an older file holds
 * only older records.
 */
async function listParquet(bucket: string, prefix: string, since: Date | undefined): Promise<ListedFile[]> {
  const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
  const keys: ListedFile[] = [];
  let token: string | undefined;
  do {
    const page = await s3Client().send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) {
      if (!object.Key?.endsWith(".parquet")) continue;
      if (since !== undefined && object.LastModified !== undefined && object.LastModified < since) continue;
      keys.push({ key: object.Key, etag: object.ETag ?? `${object.LastModified?.getTime()}-${object.Size}` });
    }
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

async function download(bucket: string, key: string): Promise<Uint8Array> {
  const { GetObjectCommand } = await import("@aws-sdk/client-s3");
  const object = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await object.Body?.transformToByteArray()) ?? new Uint8Array();
}
