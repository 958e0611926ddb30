/**
 * One Athena query over a deployed telemetry bus's Glue database, in its workgroup (which
 * enforces where results go, their encryption and the bytes a query may scan): started, waited
 * for, its result pages read. Values come back as Athena's text, numbers and timestamps included.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
} from "@aws-sdk/client-athena";
import type { QueryResult } from "../archive/sql.ts";

let client: AthenaClient | undefined;
const athena = () => {
  client ??= new AthenaClient({});
  return client;
};

/** Runs `sql` in the workgroup with the database as default; throws Athena's reason if it fails. */
export async function runAthenaQuery(
  sql: string,
  target: { readonly database: string; readonly workGroup: string },
  timeoutMs = 120_000,
): Promise<QueryResult> {
  const started = await athena().send(
    new StartQueryExecutionCommand({
      QueryString: sql,
      WorkGroup: target.workGroup,
      QueryExecutionContext: { Database: target.database },
    }),
  );
  const id = started.QueryExecutionId;
  if (id === undefined) throw new Error("Athena started no query");
  const until = Date.now() + timeoutMs;
  for (let wait = 200; ; wait = Math.min(wait * 1.5, 2_000)) {
    const { QueryExecution } = await athena().send(new GetQueryExecutionCommand({ QueryExecutionId: id }));
    const state = QueryExecution?.Status?.State;
    if (state === "SUCCEEDED") break;
    if (state === "FAILED" || state === "CANCELLED") {
      throw new Error(
        `Athena query ${id} ${state.toLowerCase()}: ${QueryExecution?.Status?.StateChangeReason ?? "no reason given"}`,
      );
    }
    if (Date.now() > until)
      throw new Error(`Athena query ${id} still ${state ?? "queued"} after ${timeoutMs / 1000} s`);
    await sleep(wait);
  }
  let columns: string[] = [];
  const rows: Record<string, unknown>[] = [];
  let token: string | undefined;
  let header = true;
  do {
    const page = await athena().send(new GetQueryResultsCommand({ QueryExecutionId: id, NextToken: token }));
    columns = page.ResultSet?.ResultSetMetadata?.ColumnInfo?.map((c) => c.Name ?? "") ?? columns;
    for (const row of page.ResultSet?.Rows ?? []) {
      // The first row of the first page repeats the column names.
      if (header) {
        header = false;
        continue;
      }
      const values = row.Data ?? [];
      rows.push(Object.fromEntries(columns.map((name, i) => [name, values[i]?.VarCharValue ?? null])));
    }
    token = page.NextToken;
  } while (token);
  return { columns, rows };
}
