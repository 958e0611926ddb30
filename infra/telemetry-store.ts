/**
 * A telemetry bus's storage on AWS (law K: a different event storage system): no relay, no
 * arbitration, no topic, no archiver. A Firehose delivery stream reads the bus's stream and
 * writes Parquet files (converted by the Glue table's schema from each record's Protobuf JSON)
 * into a bucket of their own, by hour of arrival; Athena queries them through the `telemetry`
 * view, the columns `canon archive sql --bus analytics` has locally (shared/analytics/schema.ts).
 * The files expire after the plan's retention; the bucket and Athena's results are encrypted with
 * one customer managed key.
 */
import { Aws, Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import * as athena from "aws-cdk-lib/aws-athena";
import * as glue from "aws-cdk-lib/aws-glue";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kinesis from "aws-cdk-lib/aws-kinesis";
import * as firehose from "aws-cdk-lib/aws-kinesisfirehose";
import * as kms from "aws-cdk-lib/aws-kms";
import * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { firehoseHourPrefix } from "../shared/analytics/layout.ts";
import { glueColumns, telemetryViewSql, telemetryViewTypes } from "../shared/analytics/schema.ts";
import type { PlannedTelemetryStore } from "../shared/plan.ts";
import { acknowledgeAccessLogs, globalBucketName } from "./archive.ts";
import { nagResource } from "./nag.ts";
import { telemetryKeyAlias } from "./names.ts";

export interface TelemetryStoreProps {
  readonly prefix: string;
  readonly store: PlannedTelemetryStore;
  /** The bus's stream, the delivery stream's source. */
  readonly stream: kinesis.IStream;
  /**
   * Seconds Firehose buffers before it writes a file (60 to 900): the delay before a record is
   * queryable, against the number of files. Parquet conversion buffers at least 64 MiB too.
   * @default 60
   */
  readonly bufferSeconds?: number;
  /** The first day the `dt` partition projects (yyyy-MM-dd). @default "2026-01-01" */
  readonly since?: string;
  /** Bytes one Athena query may scan before it is cancelled. @default 10 GiB */
  readonly bytesScannedCutoffPerQuery?: number;
}

/** The Glue view Athena reads, and its name in `canon archive sql --bus analytics`. */
export const telemetryViewName = "telemetry";

/** Where the workgroup writes Athena's results, in the files' bucket. */
export const telemetryResultsPrefix = "athena-results/";

export class TelemetryStore extends Construct {
  readonly key: kms.Key;
  readonly bucket: s3.Bucket;
  readonly database: glue.CfnDatabase;
  readonly recordsTable: glue.CfnTable;
  readonly view: glue.CfnTable;
  readonly deliveryStream: firehose.CfnDeliveryStream;
  readonly workGroup: athena.CfnWorkGroup;

  constructor(scope: Construct, id: string, props: TelemetryStoreProps) {
    super(scope, id);
    const { store } = props;
    this.key = new kms.Key(this, "Key", {
      alias: telemetryKeyAlias(props.prefix, store.bus),
      description: `Canon ${props.prefix} bus:${store.bus}: encrypts its Parquet files and Athena's query results`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.bucket = new s3.Bucket(this, "Bucket", {
      bucketName: globalBucketName(store.bucket),
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      // Telemetry is not the log of record: it expires (docs/deploy.md, "Retention and cost").
      lifecycleRules: [
        {
          id: "expire",
          expiration: Duration.days(store.retentionDays),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        // A query's results can be had again by running it: a week (the shorter rule wins).
        { id: "query-results", prefix: telemetryResultsPrefix, expiration: Duration.days(7) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledgeAccessLogs(this.bucket);

    this.database = new glue.CfnDatabase(this, "Database", {
      catalogId: Aws.ACCOUNT_ID,
      databaseInput: {
        name: store.database,
        description: `Canon ${props.prefix}: the ${store.bus} bus's telemetry (law K)`,
      },
    });
    const location = `s3://${this.bucket.bucketName}/${store.prefix}`;
    this.recordsTable = new glue.CfnTable(this, "RecordsTable", {
      catalogId: Aws.ACCOUNT_ID,
      databaseName: store.database,
      tableInput: {
        name: store.table,
        description: "One row per TelemetryRecord, as Firehose converts it (query the telemetry view)",
        tableType: "EXTERNAL_TABLE",
        parameters: {
          EXTERNAL: "TRUE",
          classification: "parquet",
          // dt: the hour of arrival (UTC), Firehose's prefix; projected, so no crawler runs.
          "projection.enabled": "true",
          "projection.dt.type": "date",
          "projection.dt.format": "yyyy-MM-dd-HH",
          "projection.dt.range": `${props.since ?? "2026-01-01"}-00,NOW`,
          "projection.dt.interval": "1",
          "projection.dt.interval.unit": "HOURS",
          "storage.location.template": `${location}dt=\${dt}/`,
        },
        partitionKeys: [{ name: "dt", type: "string", comment: "yyyy-MM-dd-HH, the hour of arrival (UTC)" }],
        storageDescriptor: {
          location,
          inputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
          outputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
          serdeInfo: { serializationLibrary: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe" },
          columns: glueColumns(),
        },
      },
    });
    this.recordsTable.addResourceDependency(this.database);

    const sql = telemetryViewSql(`"${store.database}"."${store.table}"`, "athena");
    const definition = {
      originalSql: sql,
      catalog: "awsdatacatalog",
      schema: store.database,
      columns: telemetryViewTypes().map(({ name, type }) => ({ name, type })),
    };
    // An Athena view is a Glue table of type VIRTUAL_VIEW holding its definition as Athena writes it.
    this.view = new glue.CfnTable(this, "TelemetryView", {
      catalogId: Aws.ACCOUNT_ID,
      databaseName: store.database,
      tableInput: {
        name: telemetryViewName,
        description: "One row per telemetry record, with the columns of `canon archive sql --bus analytics`",
        tableType: "VIRTUAL_VIEW",
        parameters: { presto_view: "true", comment: "Presto View" },
        viewOriginalText: `/* Presto View: ${Buffer.from(JSON.stringify(definition)).toString("base64")} */`,
        viewExpandedText: "/* Presto View */",
        storageDescriptor: {
          columns: telemetryViewTypes().map(({ name, hive }) => ({ name, type: hive })),
          serdeInfo: {},
        },
      },
    });
    this.view.addResourceDependency(this.recordsTable);

    this.deliveryStream = this.createDeliveryStream(props);
    this.workGroup = this.createWorkGroup(props, sql);
  }

  private createDeliveryStream(props: TelemetryStoreProps): firehose.CfnDeliveryStream {
    const { store } = props;
    const stack = Stack.of(this);
    const role = new iam.Role(this, "DeliveryRole", {
      assumedBy: new iam.ServicePrincipal("firehose.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
      }),
      description: `Firehose: the ${store.bus} stream into Parquet files`,
    });
    props.stream.grantRead(role);
    // What Firehose's S3 destination takes (its documented policy), not a grantReadWrite's wildcards.
    const objects = this.bucket.arnForObjects("*");
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
        resources: [this.bucket.bucketArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
        resources: [objects],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({ actions: ["kms:Decrypt", "kms:GenerateDataKey"], resources: [this.key.keyArn] }),
    );
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[${nagResource(this, objects)}]`,
      reason:
        "Firehose names each Parquet file itself (hour, time, random identifier): the role writes objects of any key.",
    });
    const logGroup = new logs.LogGroup(this, "DeliveryLogs", {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const logStream = new logs.LogStream(this, "DeliveryLogStream", { logGroup, removalPolicy: RemovalPolicy.DESTROY });
    logGroup.grantWrite(role);
    const glueArn = (resource: string) => stack.formatArn({ service: "glue", resource });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
        resources: [
          glueArn("catalog"),
          glueArn(`database/${store.database}`),
          glueArn(`table/${store.database}/${store.table}`),
        ],
      }),
    );
    const stream = new firehose.CfnDeliveryStream(this, "DeliveryStream", {
      deliveryStreamName: store.deliveryStream,
      deliveryStreamType: "KinesisStreamAsSource",
      // The stream is read as it is encrypted (its own KMS key); the files with the bucket's key.
      kinesisStreamSourceConfiguration: { kinesisStreamArn: props.stream.streamArn, roleArn: role.roleArn },
      extendedS3DestinationConfiguration: {
        bucketArn: this.bucket.bucketArn,
        roleArn: role.roleArn,
        prefix: `${store.prefix}${firehoseHourPrefix}`,
        errorOutputPrefix: "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd-HH}/",
        fileExtension: ".parquet",
        // Parquet compresses itself (below); Firehose must not compress the file again.
        compressionFormat: "UNCOMPRESSED",
        bufferingHints: { intervalInSeconds: props.bufferSeconds ?? 60, sizeInMBs: 128 },
        encryptionConfiguration: { kmsEncryptionConfig: { awskmsKeyArn: this.key.keyArn } },
        cloudWatchLoggingOptions: {
          enabled: true,
          logGroupName: logGroup.logGroupName,
          logStreamName: logStream.logStreamName,
        },
        dataFormatConversionConfiguration: {
          enabled: true,
          inputFormatConfiguration: { deserializer: { openXJsonSerDe: { caseInsensitive: true } } },
          outputFormatConfiguration: { serializer: { parquetSerDe: { compression: "SNAPPY" } } },
          schemaConfiguration: {
            catalogId: Aws.ACCOUNT_ID,
            databaseName: store.database,
            tableName: store.table,
            region: Aws.REGION,
            roleArn: role.roleArn,
            versionId: "LATEST",
          },
        },
      },
    });
    // The role's policy first: Firehose checks its access when the stream is created.
    stream.node.addDependency(role);
    stream.addResourceDependency(this.recordsTable);
    Validations.of(stream).acknowledge({
      id: "AwsSolutions-KDF1",
      reason:
        "A delivery stream whose source is a Kinesis stream cannot have server-side encryption of its own: the records " +
        "are encrypted in the source stream (KMS) and the files with the bucket's customer managed key.",
    });
    return stream;
  }

  private createWorkGroup(props: TelemetryStoreProps, sql: string): athena.CfnWorkGroup {
    const { store } = props;
    const workGroup = new athena.CfnWorkGroup(this, "WorkGroup", {
      name: store.workGroup,
      description: `SQL over the ${store.bus} bus's telemetry: SELECT … FROM ${store.database}.${telemetryViewName}`,
      state: "ENABLED",
      recursiveDeleteOption: true,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery ?? 10 * 1024 ** 3,
        engineVersion: { selectedEngineVersion: "Athena engine version 3" },
        resultConfiguration: {
          // Results beside the files, under their own prefix, expiring with them.
          outputLocation: `s3://${this.bucket.bucketName}/${telemetryResultsPrefix}`,
          encryptionConfiguration: { encryptionOption: "SSE_KMS", kmsKey: this.key.keyArn },
          expectedBucketOwner: Aws.ACCOUNT_ID,
        },
      },
    });
    const recreate = new athena.CfnNamedQuery(this, "TelemetryViewQuery", {
      name: "recreate the telemetry view",
      description: "CREATE OR REPLACE VIEW telemetry: run it if Athena ever reports the view stale",
      database: store.database,
      workGroup: workGroup.name,
      queryString: `CREATE OR REPLACE VIEW ${telemetryViewName} AS\n${sql}`,
    });
    recreate.addResourceDependency(workGroup);
    recreate.addResourceDependency(this.database);
    return workGroup;
  }
}
