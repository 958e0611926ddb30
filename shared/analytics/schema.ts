/**
 * The analytics bus's columnar schema (law K), one place for both storage systems:
 *
 * - the raw `records` columns: what a Parquet file holds, one row per TelemetryRecord
 *   (events/proto/canon/telemetry/v1/telemetry.proto). On AWS, Firehose converts the stream's
 *   Protobuf JSON into these columns by the Glue table (OpenX JSON SerDe, keys matched without
 *   regard to case: `traceId` fills `traceid`); locally the sink writes the same columns;
 * - the `telemetry` view that SQL reads: the raw columns with snake_case names, times as
 *   timestamps, and each detail flattened with its kind as prefix (`span_started_at`,
 *   `request_latency_ms`), in DuckDB's and Athena's dialects.
 *
 * Times and 64-bit integers are strings in Protobuf JSON: the raw columns keep them as strings
 * (the SerDe would have to guess), the view casts them.
 */

/** A detail field's type in the view; raw, "timestamp" and "bigint" are strings. */
type FieldType = "string" | "int" | "double" | "bigint" | "timestamp";

/** Each detail of the record's `oneof`, by its JSON name, with its fields by JSON name. */
export const telemetryDetails = {
  request: { method: "string", route: "string", status: "int", latencyMs: "double" },
  span: { name: "string", startedAt: "timestamp", endedAt: "timestamp", subscriber: "string" },
  outcome: {
    command: "string",
    status: "string",
    attempts: "int",
    queuedMs: "double",
    decidedMs: "double",
    appendedMs: "double",
    settledMs: "double",
  },
  apply: { subscriber: "string", eventType: "string", aggregateVersion: "bigint", lagMs: "double" },
  park: { subscriber: "string", eventId: "string", reason: "string" },
  deadLetter: { queue: "string", reason: "string" },
  dropped: { count: "bigint" },
} as const satisfies Record<string, Record<string, FieldType>>;

export type TelemetryDetail = keyof typeof telemetryDetails;

/** The record's top-level fields, by JSON name, in proto order. */
export const telemetryFields = {
  kind: "string",
  at: "timestamp",
  source: "string",
  traceId: "string",
  spanId: "string",
  parentSpanId: "string",
  commandId: "string",
  correlationId: "string",
  aggregateId: "string",
} as const satisfies Record<string, FieldType>;

/** `latencyMs` → `latency_ms`, `deadLetter` → `dead_letter`. */
export function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The raw (Parquet, Glue) column or struct field of a JSON name: lower case, as the SerDe matches it. */
export function rawName(name: string): string {
  return name.toLowerCase();
}

const rawType = (type: FieldType) => (type === "timestamp" || type === "bigint" ? "string" : type);

/** The raw columns with their Glue (Hive) types, partition column excluded. */
export function glueColumns(): { name: string; type: string }[] {
  return [
    ...Object.entries(telemetryFields).map(([name, type]) => ({ name: rawName(name), type: rawType(type) })),
    ...Object.entries(telemetryDetails).map(([detail, fields]) => ({
      name: rawName(detail),
      type: `struct<${Object.entries(fields)
        .map(([field, type]) => `${rawName(field)}:${rawType(type)}`)
        .join(",")}>`,
    })),
  ];
}

const duckTypes: Record<string, string> = { string: "VARCHAR", int: "INTEGER", double: "DOUBLE" };

/** The raw columns with their DuckDB types (what the local sink writes to Parquet). */
export function duckColumns(): { name: string; type: string }[] {
  return [
    ...Object.entries(telemetryFields).map(([name, type]) => ({
      name: rawName(name),
      type: duckTypes[rawType(type)] as string,
    })),
    ...Object.entries(telemetryDetails).map(([detail, fields]) => ({
      name: rawName(detail),
      type: `STRUCT(${Object.entries(fields)
        .map(([field, type]) => `${rawName(field)} ${duckTypes[rawType(type)]}`)
        .join(", ")})`,
    })),
  ];
}

/** The raw row of one record's Protobuf JSON (defaults omitted by the JSON mapping are null). */
export function rawRow(record: Record<string, unknown>): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const name of Object.keys(telemetryFields)) row[rawName(name)] = scalar(record[name], "string");
  for (const [detail, fields] of Object.entries(telemetryDetails)) {
    const value = record[detail];
    if (value === null || typeof value !== "object") {
      row[rawName(detail)] = null;
      continue;
    }
    const struct: Record<string, unknown> = {};
    for (const [field, type] of Object.entries(fields)) {
      struct[rawName(field)] = scalar((value as Record<string, unknown>)[field], rawType(type));
    }
    row[rawName(detail)] = struct;
  }
  return row;
}

/** A JSON value as its raw column's type; a number field left at its default (omitted) is 0. */
function scalar(value: unknown, type: string): unknown {
  if (type === "int" || type === "double") {
    const n = typeof value === "number" ? value : Number(value ?? 0);
    return Number.isFinite(n) ? n : null;
  }
  return value === undefined || value === null ? null : String(value);
}

export type Dialect = "duckdb" | "athena";

/** The `telemetry` view's columns, in order (`dt`, the hour partition, last). */
export const telemetryColumns: readonly string[] = [
  ...Object.keys(telemetryFields).map(snake),
  ...Object.entries(telemetryDetails).flatMap(([detail, fields]) =>
    Object.keys(fields).map((field) => `${snake(detail)}_${snake(field)}`),
  ),
  "dt",
];

/** The SELECT of the `telemetry` view over the raw table `from` (already quoted). */
export function telemetryViewSql(from: string, dialect: Dialect): string {
  const typed = (expression: string, type: FieldType) => {
    if (type === "timestamp") {
      return dialect === "athena"
        ? `CAST(from_iso8601_timestamp(${expression}) AS timestamp(3))`
        : `CAST(${expression} AS TIMESTAMP)`;
    }
    if (type === "bigint") return `CAST(${expression} AS BIGINT)`;
    return expression;
  };
  const columns = [
    ...Object.entries(telemetryFields).map(
      ([name, type]) => `${typed(`r."${rawName(name)}"`, type)} AS "${snake(name)}"`,
    ),
    // Qualified by the table's alias, so a struct's field is never read as a table's column.
    ...Object.entries(telemetryDetails).flatMap(([detail, fields]) =>
      Object.entries(fields).map(
        ([field, type]) =>
          `${typed(`r."${rawName(detail)}"."${rawName(field)}"`, type)} AS "${snake(detail)}_${snake(field)}"`,
      ),
    ),
    `r."dt" AS "dt"`,
  ];
  return `SELECT\n  ${columns.join(",\n  ")}\nFROM ${from} AS r`;
}

/** The view's Athena column types, for the Glue view's definition. */
export function telemetryViewTypes(): { name: string; type: string; hive: string }[] {
  const athena: Record<FieldType, [string, string]> = {
    string: ["varchar", "string"],
    int: ["integer", "int"],
    double: ["double", "double"],
    bigint: ["bigint", "bigint"],
    timestamp: ["timestamp(3)", "timestamp"],
  };
  const of = (name: string, type: FieldType) => ({ name, type: athena[type][0], hive: athena[type][1] });
  return [
    ...Object.entries(telemetryFields).map(([name, type]) => of(snake(name), type)),
    ...Object.entries(telemetryDetails).flatMap(([detail, fields]) =>
      Object.entries(fields).map(([field, type]) => of(`${snake(detail)}_${snake(field)}`, type as FieldType)),
    ),
    of("dt", "string"),
  ];
}
