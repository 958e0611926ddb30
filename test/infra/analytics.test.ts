/**
 * The analytics bus on AWS (law K): its stack delivers the stream to Parquet files by Firehose,
 * typed by a Glue table whose columns are the local sink's, with the `telemetry` view of the
 * local SQL; the files expire; the journeys table expires its spans; the laws let every function
 * put telemetry there, and nothing else new.
 */
import type { Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { app as bank } from "../../functions/app.ts";
import { BusStack } from "../../infra/bus-stack.ts";
import { applyCanonChecks } from "../../infra/canon-app.ts";
import type { CanonFunction } from "../../infra/canon-function.ts";
import { ServiceStack } from "../../infra/service-stack.ts";
import { duckColumns, glueColumns, telemetryColumns, telemetryViewTypes } from "../../shared/analytics/schema.ts";
import { planApp } from "../../shared/plan.ts";
import { one, resources, synthesize, tag, testApp } from "./support.ts";

const { stacks, templates, plan } = synthesize(bank);
const analytics = stacks.buses.get("analytics") as Stack;
const json = templates.get(analytics);
const store = plan.telemetry[0];

describe("the analytics bus's stack", () => {
  it("delivers its stream to Parquet files under hour partitions, converted by the Glue table", () => {
    const [, delivery] = one(resources(json, "AWS::KinesisFirehose::DeliveryStream"), "delivery stream");
    const { Properties: p } = delivery;
    expect(p.DeliveryStreamType).toBe("KinesisStreamAsSource");
    expect(p.KinesisStreamSourceConfiguration.KinesisStreamARN).toEqual({ "Fn::GetAtt": [expect.any(String), "Arn"] });
    const s3 = p.ExtendedS3DestinationConfiguration;
    expect(s3).toMatchObject({
      Prefix: "records/dt=!{timestamp:yyyy-MM-dd-HH}/",
      ErrorOutputPrefix: expect.stringMatching(/^errors\//),
      FileExtension: ".parquet",
      CompressionFormat: "UNCOMPRESSED",
      BufferingHints: { IntervalInSeconds: 60 },
      CloudWatchLoggingOptions: { Enabled: true },
      EncryptionConfiguration: { KMSEncryptionConfig: { AWSKMSKeyARN: expect.anything() } },
      DataFormatConversionConfiguration: {
        Enabled: true,
        InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: { CaseInsensitive: true } } },
        OutputFormatConfiguration: { Serializer: { ParquetSerDe: { Compression: "SNAPPY" } } },
        SchemaConfiguration: { DatabaseName: "canon_analytics", TableName: "records", VersionId: "LATEST" },
      },
    });
  });

  it("types the files with the columns the local sink writes, partitions projected by hour", () => {
    const [, table] = one(
      resources(json, "AWS::Glue::Table").filter(([, t]) => t.Properties.TableInput.Name === "records"),
      "records table",
    );
    const input = table.Properties.TableInput;
    expect(input.StorageDescriptor.Columns).toEqual(
      glueColumns().map(({ name, type }) => ({ Name: name, Type: type })),
    );
    // The same columns, in the same order, as the local Parquet files.
    expect(input.StorageDescriptor.Columns.map((c: { Name: string }) => c.Name)).toEqual(
      duckColumns().map((c) => c.name),
    );
    expect(input.StorageDescriptor.SerdeInfo.SerializationLibrary).toMatch(/ParquetHiveSerDe$/);
    expect(input.PartitionKeys).toEqual([expect.objectContaining({ Name: "dt", Type: "string" })]);
    expect(input.Parameters).toMatchObject({
      "projection.enabled": "true",
      "projection.dt.type": "date",
      "projection.dt.format": "yyyy-MM-dd-HH",
      "projection.dt.interval.unit": "HOURS",
    });
    // The bucket's name is a token: the template is a join ending in the hour partition.
    expect(JSON.stringify(input.Parameters["storage.location.template"])).toMatch(/\/records\/dt=\$\{dt\}\/"\]\]\}$/);
  });

  it("has a telemetry view with the local SQL's columns", () => {
    const [, view] = one(
      resources(json, "AWS::Glue::Table").filter(([, t]) => t.Properties.TableInput.Name === "telemetry"),
      "telemetry view",
    );
    const input = view.Properties.TableInput;
    expect(input.TableType).toBe("VIRTUAL_VIEW");
    const encoded = /^\/\* Presto View: (.*) \*\/$/.exec(input.ViewOriginalText)?.[1] ?? "";
    const definition = JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
    expect(definition.columns.map((c: { name: string }) => c.name)).toEqual([...telemetryColumns]);
    expect(definition.columns).toEqual(telemetryViewTypes().map(({ name, type }) => ({ name, type })));
    expect(definition.originalSql).toContain('FROM "canon_analytics"."records" AS r');
    expect(definition.originalSql).toContain("from_iso8601_timestamp");
  });

  it("expires the files after the plan's retention, encrypted with its own key, and queries them in a capped workgroup", () => {
    const template = Template.fromJSON(json);
    template.hasResourceProperties("AWS::S3::Bucket", {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: store?.retentionDays })]),
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: "aws:kms" }) }),
        ],
      },
      PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicPolicy: true }),
    });
    template.hasResourceProperties("AWS::Athena::WorkGroup", {
      Name: "canon-analytics-telemetry",
      WorkGroupConfiguration: Match.objectLike({
        EnforceWorkGroupConfiguration: true,
        BytesScannedCutoffPerQuery: 10 * 1024 ** 3,
      }),
    });
  });

  it("alarms when records wait too long to reach a Parquet file", () => {
    Template.fromJSON(json).hasResourceProperties("AWS::CloudWatch::Alarm", {
      AlarmName: "canon-bus-analytics-delivery-freshness",
      Namespace: "AWS/Firehose",
      MetricName: "DeliveryToS3.DataFreshness",
      Dimensions: [{ Name: "DeliveryStreamName", Value: "canon-analytics-delivery" }],
      Threshold: 900,
    });
  });

  it("lets Firehose read the stream and write the bucket's objects, not delete them", () => {
    const [roleId] = one(
      resources(json, "AWS::IAM::Role").filter(([, r]) =>
        JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes("firehose.amazonaws.com"),
      ),
      "delivery role",
    );
    const actions = resources(json, "AWS::IAM::Policy")
      .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap(([, p]) =>
        p.Properties.PolicyDocument.Statement.flatMap((s: { Action: string[] }) => [s.Action].flat()),
      );
    expect(actions).toEqual(
      expect.arrayContaining(["kinesis:GetRecords", "s3:PutObject", "glue:GetTableVersions", "kms:GenerateDataKey"]),
    );
    expect(actions.filter((a: string) => /Delete|\*$|^s3:\*|kinesis:Put/.test(a))).toEqual([]);
  });

  it("keeps the journeys table by trace and span, expiring its items, fed by the journey indexer", () => {
    const template = Template.fromJSON(json);
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      TableName: "canon-journeys",
      KeySchema: [
        { AttributeName: "traceId", KeyType: "HASH" },
        { AttributeName: "spanId", KeyType: "RANGE" },
      ],
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
    });
    const [fnId, fn] = one(resources(json, "AWS::Lambda::Function"), "the bus's one function");
    expect(tag(fn, "canon:role")).toBe("journeys");
    const [, mapping] = one(resources(json, "AWS::Lambda::EventSourceMapping"), "its mapping");
    expect(mapping.Properties).toMatchObject({
      FunctionName: { Ref: fnId },
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 1,
      StartingPosition: "TRIM_HORIZON",
      DestinationConfig: { OnFailure: { Destination: expect.anything() } },
    });
    expect(Object.keys(fn.Properties.Environment.Variables)).toContain("CANON_JOURNEY_TABLE");
    expect(Object.keys(fn.Properties.Environment.Variables)).not.toContain("CANON_TELEMETRY_STREAM");
  });

  it("lets the API read the journeys and every other function put telemetry on the stream", () => {
    const api = templates.get(stacks.api);
    const [, apiFn] = one(
      resources(api, "AWS::Lambda::Function").filter(([, f]) => tag(f, "canon:function") === "api"),
      "api",
    );
    expect(Object.keys(apiFn.Properties.Environment.Variables)).toEqual(
      expect.arrayContaining(["CANON_JOURNEY_TABLE", "CANON_TELEMETRY_STREAM"]),
    );
    for (const [stack, template] of templates) {
      for (const [, f] of resources(template, "AWS::Lambda::Function")) {
        if (tag(f, "canon:role") === "journeys") continue;
        expect(
          Object.keys(f.Properties.Environment.Variables),
          `${stack.stackName} ${tag(f, "canon:function")}`,
        ).toContain("CANON_TELEMETRY_STREAM");
      }
    }
  });
});

describe("the laws, with a telemetry bus", () => {
  const fixturePlan = planApp(bank);
  const functionOf = (stack: ServiceStack | BusStack, id: string) =>
    (stack.functions.get(id) as CanonFunction).function;
  const synthError = (stack: Stack): string => {
    try {
      (stack.node.root as ReturnType<typeof testApp>).synth();
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error("synthesis passed");
  };

  it("still fails a projection allowed to write the events bus's stream (law F)", () => {
    const app = testApp();
    applyCanonChecks(app, fixturePlan);
    const stack = new ServiceStack(app, "Canon-Service-accounts", { plan: fixturePlan, service: "accounts" });
    stack.resources.stream("core").grantWrite(functionOf(stack, "accounts-balances"));
    expect(synthError(stack)).toMatch(
      /Law F .*accounts-balances .*may kinesis:PutRecord, kinesis:PutRecords on stream canon-core /,
    );
  });

  it("fails a projection allowed to read the journeys index (only the API may, law B/C)", () => {
    const app = testApp();
    applyCanonChecks(app, fixturePlan);
    const stack = new ServiceStack(app, "Canon-Service-accounts", { plan: fixturePlan, service: "accounts" });
    stack.resources.table("journeys").grantReadData(functionOf(stack, "accounts-balances"));
    expect(synthError(stack)).toMatch(
      /Law B\/C .*accounts-balances .*on table canon-journeys .*owned by bus:analytics/,
    );
  });

  it("fails the journey indexer allowed to put records on the stream it reads: it would feed itself (law F)", () => {
    const app = testApp();
    applyCanonChecks(app, fixturePlan);
    const stack = new BusStack(app, "Canon-Bus-analytics", { plan: fixturePlan, bus: "analytics" });
    stack.stream.grantWrite(functionOf(stack, "analytics-journeys"));
    expect(synthError(stack)).toMatch(
      /Law F .*analytics-journeys .*may kinesis:PutRecord, kinesis:PutRecords on stream canon-analytics /,
    );
  });
});
