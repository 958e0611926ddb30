/** `canon archive verify|sql`: prove the archive complete; query it with SQL. */

import { resolve } from "node:path";
import { queryArchive } from "../../shared/archive/sql.ts";
import { verifyArchive } from "../../shared/archive/verify.ts";
import { parseCommandLine, refuse } from "./cli.ts";
import { connect } from "./connect.ts";

export const archiveUsage = `canon archive — the permanent log in S3

Usage: canon archive verify [--bus <bus>] [options]
       canon archive sql "<query>" [options]

verify   Proves the archive complete: per shard, the archived records reconcile with the
         manifest's count and watermark; every record still in the stream up to the watermark
         is archived; per aggregate, the accepted versions run from 1 with no gap. Names every
         problem found.
sql      Runs one SQL query (DuckDB) over the table \`events\`: bus, shard_id, sequence_number,
         arrived_at, commit_id, command_id, kind, accepted, aggregate_type, aggregate_id,
         expected_version, event_id, type, aggregate_version, time, schema_version, data (JSON).
         \`accepted\` is the arbitration's verdict on the event's commit.
         Example: canon archive sql "SELECT type, count(*) FROM events WHERE accepted GROUP BY type"

Options:
  --bus <bus>       verify: one bus (default: every bus)
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
    json: { type: "boolean", default: false },
  },
  actions: { verify: [], sql: ["<query>"] },
} as const;

export async function archiveCommand(args: string[]): Promise<number> {
  const line = parseCommandLine(archive, args);
  if (typeof line === "number") return line;
  const { values, action, operands } = line;
  const { plan, resources } = await connect(resolve(values["data-dir"] ?? ".canon/data"));
  const buses = plan.streams.map((s) => s.bus).filter((bus) => values.bus === undefined || bus === values.bus);
  if (buses.length === 0) {
    const known = plan.streams.map((s) => s.bus).join(", ");
    return refuse(archive, `unknown bus "${values.bus}"; buses: ${known}`, { usage: false });
  }
  const bucket = (bus: string) => resources.archiveBuckets.get(bus) as string;

  if (action === "sql") {
    try {
      const result = await queryArchive(bucket, buses, operands[0] as string);
      if (values.json) console.log(JSON.stringify(result.rows));
      else printTable(result.columns, result.rows);
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
