/**
 * `canon archive sql`: SQL over the archive with DuckDB, one table `events` (the same column
 * names as the Athena view on AWS). Rows are the archive's events, every one of them, with
 * `accepted` telling whether its commit won arbitration (the same pure function as the relay).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { arbiter, reachesReaders } from "../events/arbitrate.ts";
import { openCommit } from "../privacy/fields.ts";
import { readArchivedRecords } from "./reader.ts";

/** The `events` table's columns and DuckDB types. */
export const eventColumns = {
  bus: "VARCHAR",
  shard_id: "VARCHAR",
  sequence_number: "VARCHAR",
  arrived_at: "TIMESTAMP",
  commit_id: "VARCHAR",
  command_id: "VARCHAR",
  kind: "VARCHAR",
  accepted: "BOOLEAN",
  aggregate_type: "VARCHAR",
  aggregate_id: "VARCHAR",
  expected_version: "BIGINT",
  event_id: "VARCHAR",
  type: "VARCHAR",
  aggregate_version: "BIGINT",
  time: "TIMESTAMP",
  schema_version: "INTEGER",
  data: "JSON",
} as const;

export interface QueryResult {
  readonly columns: readonly string[];
  readonly rows: readonly Record<string, unknown>[];
}

/** Loads the buses' archives into an in-memory DuckDB table `events` and runs one query. */
export async function queryArchive(
  bucket: (bus: string) => string,
  buses: readonly string[],
  sql: string,
): Promise<QueryResult> {
  const dir = mkdtempSync(join(tmpdir(), "canon-sql-"));
  try {
    const file = join(dir, "events.jsonl");
    const lines: string[] = [];
    for (const bus of buses) {
      const run = arbiter();
      for await (const record of readArchivedRecords(bucket(bus), bus)) {
        const commit = record.commit;
        if (commit === undefined) continue;
        const accepted = reachesReaders(run.judge(commit));
        // Queried as readers see them: personal data opened, or the erased marker.
        for (const event of (await openCommit(commit)).events) {
          lines.push(
            JSON.stringify({
              bus,
              shard_id: record.shardId,
              sequence_number: record.sequenceNumber,
              arrived_at: record.arrivedAt,
              commit_id: commit.commitId,
              command_id: commit.commandId,
              kind: commit.kind,
              accepted,
              aggregate_type: commit.aggregateType,
              aggregate_id: commit.aggregateId,
              expected_version: commit.expectedVersion,
              event_id: event.id,
              type: event.type,
              aggregate_version: event.aggregateversion,
              time: event.time,
              schema_version: event.schemaversion,
              data: event.data,
            }),
          );
        }
      }
    }
    writeFileSync(file, lines.length > 0 ? `${lines.join("\n")}\n` : "");
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
      const columns = Object.entries(eventColumns)
        .map(([name, type]) => `'${name}': '${type}'`)
        .join(", ");
      await connection.run(
        `CREATE TABLE events AS SELECT * FROM read_json('${file.replaceAll("'", "''")}', format = 'newline_delimited', columns = {${columns}})`,
      );
      const reader = await connection.runAndReadAll(sql);
      return { columns: reader.columnNames(), rows: reader.getRowObjectsJson() as Record<string, unknown>[] };
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
