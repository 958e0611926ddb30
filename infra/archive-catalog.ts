/**
 * SQL over a bus's archive on AWS (law J), the counterpart of `canon archive sql` (DuckDB,
 * shared/archive/sql.ts): a Glue database with
 *
 * - `archived_records`: a table over the raw archive objects (gzip JSON lines of `ArchivedRecord`,
 *   shared/archive/layout.ts), partitioned by `dt` and `shard` with partition projection, so no
 *   crawler and no `MSCK REPAIR` ever run: Athena computes the partitions from the query;
 * - `events`: a view with the local table's column names, one row per archived event,
 *   duplicates of a record (a retried batch) read once;
 *
 * and an Athena workgroup that enforces its own settings: results encrypted with the archive's
 * key in a bucket of their own, expiring after 30 days, and a cap on the bytes one query scans.
 */
import { Aws, Duration, RemovalPolicy } from "aws-cdk-lib";
import * as athena from "aws-cdk-lib/aws-athena";
import * as glue from "aws-cdk-lib/aws-glue";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { archivePrefix } from "../shared/archive/layout.ts";
import { acknowledgeAccessLogs } from "./archive.ts";
import { archiveDatabaseName } from "./names.ts";

export interface ArchiveCatalogProps {
  readonly prefix: string;
  readonly bus: string;
  readonly bucket: s3.IBucket;
  /** Encrypts the query results, as it encrypts the archive. */
  readonly key: kms.IKey;
  /** The shard ids the `shard` partition enumerates (see `shardIdsFor`). */
  readonly shardIds: readonly string[];
  /** The first day projected for `dt` (yyyy-MM-dd); earlier objects are not seen. @default "2026-01-01" */
  readonly since?: string;
  /** Bytes one query may scan before Athena cancels it. @default 100 GiB (about $0.50 a query) */
  readonly bytesScannedCutoffPerQuery?: number;
}

/** The raw table and the view's names, in the bus's Glue database. */
export const archiveTables = { records: "archived_records", events: "events" } as const;

/** The most shard ids the `shard` enum may list (about 210 KB of table metadata; Glue allows about 1 MB). */
export const maxProjectedShardIds = 10_000;

/**
 * The shard ids the `shard` partition enumerates: `shardId-000000000000` up to `count - 1`.
 * Kinesis numbers a stream's shards from 0 and never reuses a number: every reshard gives its
 * new shards the next ones (doubling 2 shards to 4 creates shardId-000000000002 to …005, going
 * back to 2 creates …006 and …007), so after resharding the live shards' ids are past the first
 * `shards`. The default, 32 per planned shard and at least 64, covers a 2-shard stream doubled
 * five times over (2 + 4 + … + 32 = 62 ids), or ten rounds of 2 → 4 → 2. A query names
 * partitions of every listed id, most of them empty (an empty one costs Athena one S3 listing,
 * and nothing scanned); the objects of a shard past the list are invisible to SQL, so reshard
 * past it and raise `count` (`canon:archiveShardIds`).
 */
export function shardIdsFor(shards: number, count = Math.max(64, shards * 32)): string[] {
  if (!Number.isInteger(count) || count < shards || count > maxProjectedShardIds) {
    throw new Error(
      `the archive's SQL table lists ${count} shard ids: it takes a whole number from the ${shards} planned shards to ${maxProjectedShardIds}`,
    );
  }
  return Array.from({ length: count }, (_, i) => `shardId-${String(i).padStart(12, "0")}`);
}

/** The `events` view's columns: the local `events` table's names (shared/archive/sql.ts), with Athena types. */
const eventColumns = [
  ["bus", "varchar", "string"],
  ["shard_id", "varchar", "string"],
  ["sequence_number", "varchar", "string"],
  ["arrived_at", "timestamp(3)", "timestamp"],
  ["commit_id", "varchar", "string"],
  ["command_id", "varchar", "string"],
  ["kind", "varchar", "string"],
  ["accepted", "boolean", "boolean"],
  ["aggregate_type", "varchar", "string"],
  ["aggregate_id", "varchar", "string"],
  ["expected_version", "bigint", "bigint"],
  ["event_id", "varchar", "string"],
  ["type", "varchar", "string"],
  ["aggregate_version", "bigint", "bigint"],
  ["time", "timestamp(3)", "timestamp"],
  ["schema_version", "integer", "int"],
  ["data", "varchar", "string"],
] as const;

/** The column names of the `events` view, in order. */
export const eventViewColumns: readonly string[] = eventColumns.map(([name]) => name);

const eventStruct =
  "struct<id:string,type:string,source:string,subject:string,time:string,aggregatetype:string," +
  "aggregateversion:bigint,commitid:string,commandid:string,causationid:string,correlationid:string," +
  "schemaversion:int,data:string>";

/** One archived record (the JSON SerDe matches keys case-insensitively: `shardId` fills `shardid`). */
const recordColumns: glue.CfnTable.ColumnProperty[] = [
  { name: "bus", type: "string" },
  { name: "shardid", type: "string" },
  { name: "sequencenumber", type: "string", comment: "decimal, beyond 2^64: order by length, then text" },
  { name: "partitionkey", type: "string" },
  { name: "arrivedat", type: "string", comment: "ISO 8601, the stream's approximate arrival time" },
  {
    name: "commit",
    type:
      "struct<kind:string,commitid:string,commandid:string,service:string,bus:string,aggregatetype:string," +
      `aggregateid:string,expectedversion:bigint,committedat:string,events:array<${eventStruct}>>`,
    comment: "the commit, claim checks resolved; null for a malformed record. An event's data is its JSON text",
  },
  { name: "malformed", type: "struct<reason:string,data:string>", comment: "why a record is not a commit" },
];

/**
 * The `events` view. Arbitration (shared/events/arbitrate.ts) is a fold in stream order, which
 * SQL has no cheap way to run; `accepted` approximates it with window functions (see
 * docs/deploy.md, "SQL over the archive"):
 *
 * - a rejection is accepted (unversioned), as locally;
 * - a commit is accepted when it is the first, in stream order, at its aggregate's expected
 *   version (later ones are the losing races and the retried duplicates), and that version is 0
 *   or the version some other such first commit ended at.
 *
 * Stream order per aggregate is shard, then sequence number: an aggregate stays on one shard
 * lineage, and a child shard's id is above its parents'.
 */
export function eventsViewSql(database: string): string {
  const q = (name: string) => `"${name}"`;
  return `WITH records AS (
  SELECT bus, shardid, sequencenumber, arrivedat, "commit",
    row_number() OVER (PARTITION BY shardid, sequencenumber ORDER BY dt) AS copy
  FROM ${q(database)}.${q(archiveTables.records)}
  WHERE "commit" IS NOT NULL
),
commits AS (
  SELECT bus, shardid, sequencenumber, arrivedat, "commit",
    row_number() OVER (
      PARTITION BY "commit".aggregatetype, "commit".aggregateid, "commit".kind, "commit".expectedversion
      ORDER BY shardid, length(sequencenumber), sequencenumber
    ) AS nth
  FROM records
  WHERE copy = 1
),
reached AS (
  SELECT DISTINCT "commit".aggregatetype AS aggregate_type, "commit".aggregateid AS aggregate_id,
    "commit".expectedversion + cardinality("commit".events) AS version
  FROM commits
  WHERE nth = 1 AND "commit".kind = 'events'
)
SELECT
  c.bus AS "bus",
  c.shardid AS "shard_id",
  c.sequencenumber AS "sequence_number",
  CAST(from_iso8601_timestamp(c.arrivedat) AS timestamp(3)) AS "arrived_at",
  c."commit".commitid AS "commit_id",
  c."commit".commandid AS "command_id",
  c."commit".kind AS "kind",
  (c."commit".kind = 'rejection' OR (c.nth = 1 AND (c."commit".expectedversion = 0 OR r.version IS NOT NULL))) AS "accepted",
  c."commit".aggregatetype AS "aggregate_type",
  c."commit".aggregateid AS "aggregate_id",
  c."commit".expectedversion AS "expected_version",
  e.id AS "event_id",
  e.type AS "type",
  e.aggregateversion AS "aggregate_version",
  CAST(from_iso8601_timestamp(e.time) AS timestamp(3)) AS "time",
  e.schemaversion AS "schema_version",
  e.data AS "data"
FROM commits c
LEFT JOIN reached r
  ON r.aggregate_type = c."commit".aggregatetype AND r.aggregate_id = c."commit".aggregateid
  AND r.version = c."commit".expectedversion
CROSS JOIN UNNEST(c."commit".events) AS t (e)`;
}

export class ArchiveCatalog extends Construct {
  readonly database: glue.CfnDatabase;
  readonly recordsTable: glue.CfnTable;
  readonly eventsView: glue.CfnTable;
  readonly workGroup: athena.CfnWorkGroup;
  readonly resultsBucket: s3.Bucket;
  readonly databaseName: string;

  constructor(scope: Construct, id: string, props: ArchiveCatalogProps) {
    super(scope, id);
    const database = archiveDatabaseName(props.prefix, props.bus);
    this.databaseName = database;
    this.database = new glue.CfnDatabase(this, "Database", {
      catalogId: Aws.ACCOUNT_ID,
      databaseInput: {
        name: database,
        description: `Canon ${props.prefix}: the ${props.bus} bus's archive (law J)`,
      },
    });

    const location = `s3://${props.bucket.bucketName}/${archivePrefix(props.bus)}`;
    this.recordsTable = new glue.CfnTable(this, "RecordsTable", {
      catalogId: Aws.ACCOUNT_ID,
      databaseName: database,
      tableInput: {
        name: archiveTables.records,
        description: "Every archived stream record, one row per record (a retried batch may hold it twice)",
        tableType: "EXTERNAL_TABLE",
        parameters: {
          EXTERNAL: "TRUE",
          classification: "json",
          compressionType: "gzip",
          "projection.enabled": "true",
          // dt: the day of an object's first record (a batch across midnight sits under its first day).
          "projection.dt.type": "date",
          "projection.dt.format": "yyyy-MM-dd",
          "projection.dt.range": `${props.since ?? "2026-01-01"},NOW`,
          "projection.dt.interval": "1",
          "projection.dt.interval.unit": "DAYS",
          // shard: an enum of every id the stream may have had (see shardIdsFor), not `injected`:
          // an injected column must be given by value in every query's WHERE, so a SELECT without
          // a shard filter, the `events` view first of all, would fail. Not `integer` either: its
          // values would be bare numbers, not the shard ids the path and `shardid` hold.
          "projection.shard.type": "enum",
          "projection.shard.values": props.shardIds.join(","),
          "storage.location.template": `${location}dt=\${dt}/shard=\${shard}/`,
        },
        partitionKeys: [
          { name: "dt", type: "string", comment: "yyyy-MM-dd" },
          { name: "shard", type: "string", comment: "the Kinesis shard id" },
        ],
        storageDescriptor: {
          location,
          inputFormat: "org.apache.hadoop.mapred.TextInputFormat",
          outputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
          serdeInfo: {
            // OpenX: case-insensitive keys, and a nested object in a string column comes as its JSON text.
            serializationLibrary: "org.openx.data.jsonserde.JsonSerDe",
            parameters: { "case.insensitive": "TRUE" },
          },
          columns: recordColumns,
        },
      },
    });
    this.recordsTable.addResourceDependency(this.database);

    const sql = eventsViewSql(database);
    const definition = {
      originalSql: sql,
      catalog: "awsdatacatalog",
      schema: database,
      columns: eventColumns.map(([name, type]) => ({ name, type })),
    };
    // An Athena view is a Glue table of type VIRTUAL_VIEW holding the view's definition the way
    // Athena writes it. The named query below recreates it with CREATE OR REPLACE VIEW.
    this.eventsView = new glue.CfnTable(this, "EventsView", {
      catalogId: Aws.ACCOUNT_ID,
      databaseName: database,
      tableInput: {
        name: archiveTables.events,
        description: "One row per archived event, with the columns of `canon archive sql`'s table",
        tableType: "VIRTUAL_VIEW",
        parameters: { presto_view: "true", comment: "Presto View" },
        viewOriginalText: `/* Presto View: ${Buffer.from(JSON.stringify(definition)).toString("base64")} */`,
        viewExpandedText: "/* Presto View */",
        storageDescriptor: { columns: eventColumns.map(([name, , type]) => ({ name, type })), serdeInfo: {} },
      },
    });
    this.eventsView.addResourceDependency(this.recordsTable);

    this.resultsBucket = new s3.Bucket(this, "ResultsBucket", {
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.key,
      bucketKeyEnabled: true,
      lifecycleRules: [{ expiration: Duration.days(30), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN, // no autoDeleteObjects (a helper function); empty it by hand if you must
    });
    acknowledgeAccessLogs(this.resultsBucket);

    this.workGroup = new athena.CfnWorkGroup(this, "WorkGroup", {
      name: `${props.prefix}-${props.bus}-archive`,
      description: `SQL over the ${props.bus} archive: SELECT … FROM ${database}.${archiveTables.events}`,
      state: "ENABLED",
      recursiveDeleteOption: true,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery ?? 100 * 1024 ** 3,
        engineVersion: { selectedEngineVersion: "Athena engine version 3" },
        resultConfiguration: {
          outputLocation: `s3://${this.resultsBucket.bucketName}/`,
          encryptionConfiguration: { encryptionOption: "SSE_KMS", kmsKey: props.key.keyArn },
          expectedBucketOwner: Aws.ACCOUNT_ID,
        },
      },
    });

    const recreate = new athena.CfnNamedQuery(this, "EventsViewQuery", {
      name: "recreate the events view",
      description: "CREATE OR REPLACE VIEW events: run it if Athena ever reports the view stale",
      database,
      workGroup: this.workGroup.name,
      queryString: `CREATE OR REPLACE VIEW ${archiveTables.events} AS\n${sql}`,
    });
    recreate.addResourceDependency(this.workGroup);
    recreate.addResourceDependency(this.database);
  }
}
