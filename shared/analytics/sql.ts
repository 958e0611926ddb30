/**
 * SQL over the analytics bus (law K): one view `telemetry`, one row per TelemetryRecord, the same
 * columns locally and on AWS (shared/analytics/schema.ts). Locally DuckDB reads the Parquet files
 * of the local bucket (shared/analytics/local-query.ts); on AWS Athena reads the Glue table Firehose fills (the `telemetry` view is
 * in the bus's Glue database). `hopLatencies` is what the console's percentile panel shows.
 */
import type { QueryResult } from "../archive/sql.ts";
import type { AppPlan, PlannedTelemetryStore } from "../plan.ts";
import { hopNames } from "../telemetry/records.ts";
import { runAthenaQuery } from "./athena.ts";
import { hourPartition } from "./layout.ts";
import { queryLocalFiles } from "./local-query.ts";
import type { Dialect } from "./schema.ts";

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
  return queryLocalFiles(sql, target, options.since);
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
const hopOrder: readonly string[] = hopNames;

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
