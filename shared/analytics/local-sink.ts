/**
 * The analytics bus's storage on this machine, what Firehose is on AWS (law K): the telemetry
 * stream → Parquet files in the local bucket, in the layout Firehose writes (layout.ts), with the
 * columns the Glue table gives them (schema.ts). Run by the local runner as a Kinesis consumer
 * (`canon dev` adds it: `localSinkFunctions`), one batch a second at most, one file a batch.
 *
 * Crash-proof without duplicates: a file is keyed by its shard and first sequence number, and
 * after each file the shard's marker records the last sequence number written. A batch delivered
 * again (the runner checkpoints after the handler, lazily) skips what the marker covers, so it
 * starts where the unmarked file started and replaces it: nothing lost, nothing twice.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { DuckDBInstance } from "@duckdb/node-api";
import type { KinesisStreamHandler, KinesisStreamRecord } from "aws-lambda";
import { compareSequence } from "../archive/layout.ts";
import { readJson } from "../archive/reader.ts";
import { s3Client } from "../aws/clients.ts";
import { requireEnv } from "../env.ts";
import { functionLogger } from "../log.ts";
import {
  type AppPlan,
  envNames,
  type PlannedFunction,
  type PlannedTelemetryStore,
  streamRetryAttempts,
} from "../plan.ts";
import { sinkFileKey, sinkMarkerKey } from "./layout.ts";
import { duckColumns, rawRow } from "./schema.ts";

/** The sink's environment: the bucket and key prefix of the Parquet files. */
export const analyticsSinkEnv = { bucket: "CANON_ANALYTICS_BUCKET", prefix: "CANON_ANALYTICS_PREFIX" } as const;

/** The id of a telemetry bus's local failure queue (the local sink's on-failure destination). */
export const localSinkFailureQueueId = (bus: string) => `${bus}-local-sink-failures`;

/**
 * The local sink of each telemetry bus, as a function for the runner: not in the plan (on AWS
 * the delivery stream is not a function), added to what `canon dev` runs.
 */
export function localSinkFunctions(plan: AppPlan): PlannedFunction[] {
  return plan.telemetry.map((store: PlannedTelemetryStore) => ({
    id: `${store.bus}-local-sink`,
    // Like an archiver: it stores the bus's stream, and injected archiver faults reach it.
    role: "archiver",
    owner: store.owner,
    handler: "shared/analytics/local-sink.ts",
    source: {
      kind: "kinesis",
      bus: store.bus,
      batchSize: 10_000,
      batchWindowSeconds: 5,
      startingPosition: "TRIM_HORIZON",
      bisectBatchOnError: false,
      maxRetryAttempts: streamRetryAttempts,
      maxRecordAgeSeconds: -1,
      onFailureQueueId: localSinkFailureQueueId(store.bus),
      readsBy: "polling",
      parallelizationFactor: 1,
    },
    env: {
      [envNames.streamName]: { kind: "stream", bus: store.bus, access: "read" },
      [analyticsSinkEnv.bucket]: { kind: "value", value: store.bucket },
      [analyticsSinkEnv.prefix]: { kind: "value", value: store.prefix },
    },
  }));
}

const logger = /* @__PURE__ */ functionLogger("analytics-sink");
/** Per shard, the last sequence number in a file (read from the marker on the first batch). */
const written = new Map<string, SinkMarker>();
let duck: Promise<DuckDBInstance> | undefined;

interface SinkMarker {
  readonly lastSequenceNumber: string;
  readonly files: number;
  readonly records: number;
}

/** The sink's handler (a batch never spans shards, but is grouped by shard anyway). */
export const handler: KinesisStreamHandler = async (event) => {
  const bucket = requireEnv(analyticsSinkEnv.bucket);
  const prefix = requireEnv(analyticsSinkEnv.prefix);
  const stream = requireEnv(envNames.streamName);
  const byShard = new Map<string, KinesisStreamRecord[]>();
  for (const record of event.Records) {
    const shardId = record.eventID.split(":")[0] ?? "unknown";
    const records = byShard.get(shardId);
    if (records === undefined) byShard.set(shardId, [record]);
    else records.push(record);
  }
  for (const [shardId, records] of byShard) await sinkBatch({ bucket, prefix, stream }, shardId, records);
};

/** Writes the records of one shard the marker does not cover as one Parquet file, then the marker. */
async function sinkBatch(
  where: { readonly bucket: string; readonly prefix: string; readonly stream: string },
  shardId: string,
  records: readonly KinesisStreamRecord[],
): Promise<void> {
  const markerKey = sinkMarkerKey(where.stream, shardId);
  let marker = written.get(shardId);
  if (marker === undefined) {
    marker = (await readJson<SinkMarker>(where.bucket, markerKey)) ?? { lastSequenceNumber: "", files: 0, records: 0 };
    written.set(shardId, marker);
  }
  const after = marker.lastSequenceNumber;
  const fresh = records.filter((r) => after === "" || compareSequence(r.kinesis.sequenceNumber, after) > 0);
  const first = fresh[0];
  const last = fresh.at(-1);
  if (first === undefined || last === undefined) return;
  const rows: Record<string, unknown>[] = [];
  let malformed = 0;
  for (const record of fresh) {
    const parsed = parseRecord(record);
    rows.push(...parsed.rows);
    malformed += parsed.malformed;
  }
  // Firehose puts what it cannot convert under an error prefix; here it is logged and counted.
  if (malformed > 0) logger.warn("telemetry records that are not TelemetryRecord JSON skipped", { shardId, malformed });
  if (rows.length > 0) {
    const arrivedAt = new Date(first.kinesis.approximateArrivalTimestamp * 1000);
    const key = sinkFileKey(where.prefix, where.stream, shardId, arrivedAt, first.kinesis.sequenceNumber);
    await s3Client().send(
      new PutObjectCommand({
        Bucket: where.bucket,
        Key: key,
        Body: await toParquet(rows),
        ContentType: "application/vnd.apache.parquet",
        Metadata: { "last-sequence-number": last.kinesis.sequenceNumber, records: String(rows.length) },
      }),
    );
  }
  const next: SinkMarker = {
    lastSequenceNumber: last.kinesis.sequenceNumber,
    files: marker.files + (rows.length > 0 ? 1 : 0),
    records: marker.records + rows.length,
  };
  await s3Client().send(
    new PutObjectCommand({
      Bucket: where.bucket,
      Key: markerKey,
      Body: JSON.stringify(next),
      ContentType: "application/json",
    }),
  );
  written.set(shardId, next);
}

/**
 * One stream record's raw rows: a TelemetryRecord's JSON, or several, a line each (the emitter
 * may pack them; Firehose reads concatenated JSON documents the same way), and how many of its
 * lines are not one.
 */
export function parseRecord(record: KinesisStreamRecord): { rows: Record<string, unknown>[]; malformed: number } {
  const rows: Record<string, unknown>[] = [];
  let malformed = 0;
  for (const line of Buffer.from(record.kinesis.data, "base64").toString("utf8").split("\n")) {
    if (line.trim() === "") continue;
    const row = parseLine(line);
    if (row === undefined) malformed += 1;
    else rows.push(row);
  }
  return { rows, malformed: rows.length === 0 && malformed === 0 ? 1 : malformed };
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
    const json = value as Record<string, unknown>;
    if (typeof json.kind !== "string" || json.kind === "" || typeof json.at !== "string") return undefined;
    return rawRow(json);
  } catch {
    return undefined;
  }
}

/** Rows → one Snappy-compressed Parquet file (as Firehose writes them) with the raw columns, by DuckDB. */
export async function toParquet(rows: readonly Record<string, unknown>[]): Promise<Buffer> {
  duck ??= DuckDBInstance.create(":memory:");
  const connection = await (await duck).connect();
  const dir = mkdtempSync(join(tmpdir(), "canon-sink-"));
  try {
    const input = join(dir, "rows.jsonl");
    const output = join(dir, "rows.parquet");
    writeFileSync(input, `${rows.map((row) => JSON.stringify(row)).join("\n")}\n`);
    const columns = duckColumns()
      .map(({ name, type }) => `'${name}': '${type}'`)
      .join(", ");
    await connection.run(
      `COPY (SELECT * FROM read_json('${sqlPath(input)}', format = 'newline_delimited', columns = {${columns}})) ` +
        `TO '${sqlPath(output)}' (FORMAT parquet, COMPRESSION snappy)`,
    );
    return readFileSync(output);
  } finally {
    connection.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A path as a single-quoted SQL string's content. */
export function sqlPath(path: string): string {
  return path.replaceAll("'", "''");
}
