/**
 * DuckDB over the analytics bus's Parquet files in a bucket (the local cloud, or LocalStack).
 * A process keeps, per bucket, one in-memory DuckDB table of the rows of the files its last
 * query read: the next query loads only the files written since (and again those the sink
 * replaced, by their ETag), and drops the rows of files it no longer reads. DuckDB spends about
 * 1.5 ms opening a Parquet file: a console refreshing its percentiles every few seconds over
 * a window of hundreds of files must not open them all every time.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { QueryResult } from "../archive/sql.ts";
import { s3Client } from "../aws/clients.ts";
import { hourPartitionsBetween } from "./layout.ts";
import { sqlPath } from "./local-sink.ts";
import { duckColumns, telemetryViewSql } from "./schema.ts";

interface LoadedFiles {
  readonly connection: DuckDBConnection;
  /** The files whose rows the table holds, by key, with their ETag. */
  readonly loaded: Map<string, string>;
  /** Queries of one bucket run one at a time: each brings the table to its own files first. */
  tail: Promise<unknown>;
}

const stores = new Map<string, Promise<LoadedFiles>>();

/**
 * Runs `sql` over the view `telemetry` of the files under `prefix` (from `since` on, those of
 * the hours since then written since then; else all).
 */
export async function queryLocalFiles(
  sql: string,
  target: { readonly bucket: string; readonly prefix: string },
  since: Date | undefined,
): Promise<QueryResult> {
  const id = `${target.bucket}/${target.prefix}`;
  let opening = stores.get(id);
  if (opening === undefined) {
    opening = openStore();
    stores.set(id, opening);
  }
  const store = await opening;
  const run = store.tail.then(async () => {
    await syncFiles(store, target, since);
    const reader = await store.connection.runAndReadAll(sql);
    return { columns: reader.columnNames(), rows: reader.getRowObjectsJson() as Record<string, unknown>[] };
  });
  store.tail = run.catch(() => undefined);
  return run;
}

async function openStore(): Promise<LoadedFiles> {
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  const columns = duckColumns()
    .map(({ name, type }) => `"${name}" ${type}`)
    .join(", ");
  // `file`: the key each row came from, so a replaced or no longer read file's rows can go.
  await connection.run(`CREATE TABLE records (${columns}, "dt" VARCHAR, "file" VARCHAR)`);
  await connection.run(`CREATE VIEW telemetry AS ${telemetryViewSql("records", "duckdb")}`);
  return { connection, loaded: new Map(), tail: Promise.resolve() };
}

/** Brings the table to the files a query reads: new and replaced ones loaded, the others' rows dropped. */
async function syncFiles(
  store: LoadedFiles,
  target: { readonly bucket: string; readonly prefix: string },
  since: Date | undefined,
): Promise<void> {
  const prefixes =
    since === undefined
      ? [target.prefix]
      : hourPartitionsBetween(since, new Date()).map((p) => `${target.prefix}${p}/`);
  const wanted = new Map<string, string>();
  for (const prefix of prefixes) {
    for (const file of await listParquet(target.bucket, prefix, since)) wanted.set(file.key, file.etag);
  }
  const gone = [...store.loaded].filter(([key, etag]) => wanted.get(key) !== etag).map(([key]) => key);
  if (gone.length > 0) {
    await store.connection.run(`DELETE FROM records WHERE "file" IN (${gone.map(quoted).join(", ")})`);
    for (const key of gone) store.loaded.delete(key);
  }
  const fresh = [...wanted].filter(([key]) => !store.loaded.has(key));
  if (fresh.length === 0) return;
  const dir = mkdtempSync(join(tmpdir(), "canon-analytics-"));
  try {
    const paths: string[] = [];
    for (const [key] of fresh) {
      // Under its key: DuckDB reads the hour partition (`dt=…`) from the path.
      const path = join(dir, key);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, await download(target.bucket, key));
      paths.push(path);
    }
    await store.connection.run(
      `INSERT INTO records BY NAME SELECT * EXCLUDE ("filename"), substr("filename", ${dir.length + 2}) AS "file" ` +
        `FROM read_parquet([${paths.map(quoted).join(", ")}], hive_partitioning = true, hive_types_autocast = false, filename = true)`,
    );
    for (const [key, etag] of fresh) store.loaded.set(key, etag);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const quoted = (text: string) => `'${sqlPath(text)}'`;

/**
 * The Parquet files under a prefix with their ETags; from `since` on, only those written since: a
 * file is written after its records arrived, and a record is emitted before it arrives, so an
 * older file holds only older records.
 */
async function listParquet(
  bucket: string,
  prefix: string,
  since: Date | undefined,
): Promise<{ key: string; etag: string }[]> {
  const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
  const files: { key: string; etag: string }[] = [];
  let token: string | undefined;
  do {
    const page = await s3Client().send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) {
      if (!object.Key?.endsWith(".parquet")) continue;
      if (since !== undefined && object.LastModified !== undefined && object.LastModified < since) continue;
      files.push({ key: object.Key, etag: object.ETag ?? `${object.LastModified?.getTime()}-${object.Size}` });
    }
    token = page.NextContinuationToken;
  } while (token);
  return files;
}

async function download(bucket: string, key: string): Promise<Uint8Array> {
  const { GetObjectCommand } = await import("@aws-sdk/client-s3");
  const object = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await object.Body?.transformToByteArray()) ?? new Uint8Array();
}
