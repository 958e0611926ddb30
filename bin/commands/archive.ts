/**
 * `canon archive verify|sql`: prove the archive complete; query it with SQL. `--bus analytics`
 * (a telemetry bus) queries its Parquet files instead, locally with DuckDB, `--aws` with Athena.
 */

import { resolve } from "node:path";
import { telemetryColumns } from "../../shared/analytics/schema.ts";
import { athenaAnalyticsTarget, localAnalyticsTarget, queryAnalytics } from "../../shared/analytics/sql.ts";
import { type QueryResult, queryArchive } from "../../shared/archive/sql.ts";
import { verifyArchive } from "../../shared/archive/verify.ts";
import { awsRegion, isAwsTargetError } from "./aws-target.ts";
import { parseCommandLine, refuse } from "./cli.ts";
import { connect } from "./connect.ts";

export const archiveUsage = `canon archive — the permanent log in S3

Usage: canon archive verify [--bus <bus>] [options]
       canon archive sql "<query>" [options]
       canon archive sql --bus analytics "<query>" [--aws [--region <name>]] [options]

verify   Proves the archive complete: per shard, the archived records reconcile with the
         manifest's count and watermark; every record still in the stream up to the watermark
         is archived; per aggregate, the accepted versions run from 1 with no gap. Names every
         problem found.
sql      Runs one SQL query (DuckDB) over the table \`events\`: bus, shard_id, sequence_number,
         arrived_at, commit_id, command_id, kind, accepted, aggregate_type, aggregate_id,
         expected_version, event_id, type, aggregate_version, time, schema_version, data (JSON).
         \`accepted\` is the arbitration's verdict on the event's commit.
         Example: canon archive sql "SELECT type, count(*) FROM events WHERE accepted GROUP BY type"
         With --bus naming a telemetry bus (analytics): over its table \`telemetry\`, one row per
         record: ${wrap(telemetryColumns.join(", "), 9)}.
         Times are timestamps (quote "at": AT is an SQL keyword); a detail's fields are
         prefixed with its kind.
         Example: canon archive sql --bus analytics "SELECT kind, count(*) FROM telemetry GROUP BY kind"

Options:
  --bus <bus>       verify: one bus (default: every events bus); sql: a telemetry bus's table
  --aws             sql --bus <telemetry bus>: query the deployment with Athena (your credentials)
  --region <name>   With --aws: the app's region (default: $AWS_REGION, $AWS_DEFAULT_REGION)
  --data-dir <dir>  The data folder of the running \`canon dev\` (default: .canon/data)
  --json            Print JSON
  -h, --help        Show this help

Exit status: 0 verified / query answered, 1 verify found a problem or the query failed, 2 usage.`;

const archive = {
  name: "canon archive",
  usage: archiveUsage,
  options: {
    bus: { type: "string" },
    "data-dir": { type: "string" },
    aws: { type: "boolean", default: false },
    region: { type: "string" },
    json: { type: "boolean", default: false },
  },
  actions: { verify: [], sql: ["<query>"] },
} as const;

export async function archiveCommand(args: string[]): Promise<number> {
  const line = parseCommandLine(archive, args);
  if (typeof line === "number") return line;
  const { values, action, operands } = line;
  const { app } = await import("../../functions/app.ts");
  const { planApp } = await import("../../shared/plan.ts");
  const declared = planApp(app);
  const telemetry = declared.telemetry.find((store) => store.bus === values.bus);
  if (values.bus !== undefined && !declared.streams.some((s) => s.bus === values.bus)) {
    const known = declared.streams.map((s) => s.bus).join(", ");
    return refuse(archive, `unknown bus "${values.bus}"; buses: ${known}`, { usage: false });
  }
  if (telemetry !== undefined && action === "verify") {
    return refuse(
      archive,
      `"${telemetry.bus}" is a telemetry bus: it has no archive to verify (its records are Parquet files; query them with sql --bus ${telemetry.bus})`,
      { usage: false },
    );
  }
  if (values.aws && telemetry === undefined) {
    return refuse(archive, "--aws queries a telemetry bus: give --bus analytics (or your telemetry bus)", {
      usage: false,
    });
  }
  if (telemetry !== undefined) {
    try {
      let target = athenaAnalyticsTarget(telemetry);
      if (values.aws) awsRegion(values.region);
      else {
        // Locally the files are in the running system's bucket: find its endpoints first.
        await connect(resolve(values["data-dir"] ?? ".canon/data"));
        target = localAnalyticsTarget(declared) ?? target;
      }
      printResult(await queryAnalytics(operands[0] as string, { target }), values.json);
      return 0;
    } catch (error) {
      if (isAwsTargetError(error)) {
        console.error(`canon archive sql: ${error.message}`);
        return error.exitCode;
      }
      console.error(`canon archive sql: ${(error as Error).message}`);
      return 1;
    }
  }

  const { plan, resources } = await connect(resolve(values["data-dir"] ?? ".canon/data"));
  // The events buses: those with an archive.
  const buses = plan.buckets.map((b) => b.bus).filter((bus) => values.bus === undefined || bus === values.bus);
  const bucket = (bus: string) => resources.archiveBuckets.get(bus) as string;

  if (action === "sql") {
    try {
      printResult(await queryArchive(bucket, buses, operands[0] as string), values.json);
      return 0;
    } catch (error) {
      console.error(`canon archive sql: ${(error as Error).message}`);
      return 1;
    }
  }

  let ok = true;
  const reports = [];
  for (const bus of buses) {
    const report = await verifyArchive({ bucket: bucket(bus), bus, streamName: resources.streamNames.get(bus) });
    reports.push({ bus, ...report });
    ok &&= report.ok;
    if (values.json) continue;
    const s = report.stats;
    console.log(
      `${bus}: ${report.ok ? "complete" : "PROBLEMS"} — ${s.records} records in ${s.shards} shard(s), ${s.commits} commits (${s.acceptedCommits} accepted) over ${s.aggregates} aggregates; ${s.streamRecordsChecked} stream records checked, ${s.notYetArchived} not yet archived`,
    );
    for (const problem of report.problems) console.log(`  - ${problem}`);
  }
  if (values.json) console.log(JSON.stringify(reports, null, 2));
  return ok ? 0 : 1;
}

function printResult(result: QueryResult, json: boolean): void {
  if (json) console.log(JSON.stringify(result.rows));
  else printTable(result.columns, result.rows);
}

/** Text wrapped at about 80 columns, continued lines indented. */
function wrap(text: string, indent: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line.length + word.length > 80 - indent && line !== "") {
      lines.push(line.trimEnd());
      line = "";
    }
    line += `${word} `;
  }
  lines.push(line.trimEnd());
  return lines.join(`\n${" ".repeat(indent)}`);
}

function printTable(columns: readonly string[], rows: readonly Record<string, unknown>[]): void {
  const cell = (v: unknown) =>
    v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  const widths = columns.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (values: string[]) => values.map((v, i) => v.slice(0, widths[i]).padEnd(widths[i] ?? 0)).join("  ");
  console.log(line([...columns]));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of rows) console.log(line(columns.map((c) => cell(row[c]))));
  console.log(`(${rows.length} row${rows.length === 1 ? "" : "s"})`);
}
