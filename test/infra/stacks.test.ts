/**
 * Each stack of the example app, as a specification of what `cdk deploy` puts on AWS: event
 * source mappings, filter policies, FIFO settings, keys, IAM, alarms, the archive (bucket,
 * catalog, workgroup) and the API's auth, then a warming-up projection's job, a snapshot of
 * every template, cdk-nag's verdict, and the stacks' independence.
 */
import type { Stack } from "aws-cdk-lib";
import { Annotations, Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { app as definition } from "../../functions/app.ts";
import { AlarmsStack, alarmEmailsFromContext } from "../../infra/alarms-stack.ts";
import { ApiStack } from "../../infra/api-stack.ts";
import { archiveOptionsFromContext } from "../../infra/archive.ts";
import { eventViewColumns, shardIdsFor } from "../../infra/archive-catalog.ts";
import { BusStack } from "../../infra/bus-stack.ts";
import { addCanonStacks, applyCanonChecks, stacksPropsFromContext } from "../../infra/canon-app.ts";
import { alarmTopicName, archiveKeyAlias, queueKeyAlias, stackNames } from "../../infra/names.ts";
import { ServiceStack } from "../../infra/service-stack.ts";
import { eventColumns } from "../../shared/archive/sql.ts";
import { ids, planApp } from "../../shared/plan.ts";
import { shopApp } from "./fixtures/shop.ts";
import { warmUpApp } from "./fixtures/warm-up.ts";
import { type Json, normalized, one, resources, synthesize, tag, target, testApp } from "./support.ts";

const { app, plan, stacks, all, templates } = synthesize(definition);
const template = (stack: Stack) => Template.fromJSON(templates.get(stack));
const core = stacks.buses.get("core") as Stack;
const accounts = stacks.services.get("accounts") as Stack;
const transfers = stacks.services.get("transfers") as Stack;

/** The statements of the policy attached to the role of the function tagged with this plan id. */
function statementsOf(stack: Stack, functionId: string): Json[] {
  const json = templates.get(stack);
  const [, fn] = one(
    resources(json, "AWS::Lambda::Function").filter(([, r]) =>
      r.Properties.Tags?.some((t: Json) => t.Key === "canon:function" && t.Value === functionId),
    ),
    functionId,
  );
  const role = target(fn.Properties.Role);
  return resources(json, "AWS::IAM::Policy")
    .filter(([, p]) => p.Properties.Roles.some((r: Json) => target(r) === role))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}

/** The logical id of the function tagged with this plan id. */
function lambdaOf(stack: Stack, functionId: string): string {
  const [id] = one(
    resources(templates.get(stack), "AWS::Lambda::Function").filter(([, r]) => tag(r, "canon:function") === functionId),
    functionId,
  );
  return id;
}

/** The bus's archive bucket (the one with a fixed name; the other holds Athena's results). */
function archiveBucketId(stack: Stack): string {
  const [id] = one(
    resources(templates.get(stack), "AWS::S3::Bucket").filter(([, b]) => b.Properties.BucketName !== undefined),
    "archive bucket",
  );
  return id;
}

function archiveBucket(stack: Stack): Json {
  return templates.get(stack).Resources[archiveBucketId(stack)];
}

describe("a bus stack", () => {
  it("keeps its stream KMS-encrypted and retained, and its topic a KMS-encrypted high-throughput FIFO topic", () => {
    const bus = template(core);
    bus.hasResource("AWS::Kinesis::Stream", {
      Properties: { StreamEncryption: { EncryptionType: "KMS", KeyId: "alias/aws/kinesis" }, RetentionPeriodHours: 24 },
      DeletionPolicy: "Retain",
    });
    bus.hasResourceProperties("AWS::SNS::Topic", {
      FifoTopic: true,
      FifoThroughputScope: "MessageGroup",
      KmsMasterKeyId: "alias/aws/sns",
    });
  });

  it("relays from the stream with bisection, bounded retries and record age, and an on-failure queue", () => {
    const bus = template(core);
    const [failuresId] = one(
      resources(templates.get(core), "AWS::SQS::Queue").filter(
        ([, q]) => q.Properties.QueueName === `canon-${ids.relayDeadLetterQueue("core")}`,
      ),
      "relay failures queue",
    );
    bus.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      StartingPosition: "TRIM_HORIZON",
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      // Never for ever (one bad record would hold the shard until the stream expired what follows
      // it), and never silently: a batch given up on goes to the failure queue, which alarms.
      MaximumRetryAttempts: 10_000,
      MaximumRecordAgeInSeconds: 18 * 3600, // three quarters of the 24 h retention
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [failuresId, "Arn"] } } },
    });
    bus.hasResourceProperties("AWS::CloudWatch::Alarm", {
      AlarmName: "canon-bus-core-relay-failures-dead-letters",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [failuresId, "QueueName"] } }],
      Threshold: 1,
    });
  });

  it("lets the relay publish to its own topic and nothing else, with no managed policy", () => {
    const statements = statementsOf(core, "core-relay");
    const [topicId] = one(resources(templates.get(core), "AWS::SNS::Topic"), "topic");
    const publish = statements.filter((s) => [s.Action].flat().includes("sns:Publish"));
    expect(one(publish, "publish statements").Resource).toEqual({ Ref: topicId });
    expect(statements.flatMap((s) => [s.Action].flat())).not.toContain("lambda:InvokeFunction");
    for (const [, role] of resources(templates.get(core), "AWS::IAM::Role")) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  it("alarms on the relay's iterator age within minutes, the archiver's at half the retention, on dead letters and conflicts", () => {
    const bus = template(core);
    const retentionMs = 24 * 3600 * 1000;
    const iteratorAge = (role: string) =>
      one(
        Object.values(
          bus.findResources("AWS::CloudWatch::Alarm", {
            Properties: {
              MetricName: "IteratorAge",
              Namespace: "AWS/Lambda",
              AlarmName: `canon-bus-core-${role}-iterator-age`,
            },
          }),
        ) as Json[],
        `${role} iterator-age alarm`,
      );
    expect(iteratorAge("relay").Properties.Threshold).toBe(5 * 60 * 1000);
    // Invariant 4: long before a record could expire unarchived, and not for a slow minute.
    const archiver = iteratorAge("archiver");
    expect(archiver.Properties.Threshold).toBe(retentionMs / 2);
    expect(archiver.Properties.Dimensions).toEqual([
      { Name: "FunctionName", Value: { Ref: lambdaOf(core, "core-archiver") } },
    ]);
    // Each failure queue (relay, archiver) and its dead-letter queue.
    bus.resourcePropertiesCountIs(
      "AWS::CloudWatch::Alarm",
      { MetricName: "ApproximateNumberOfMessagesVisible", Threshold: 1 },
      4,
    );
    bus.hasResourceProperties("AWS::Logs::MetricFilter", {
      FilterPattern: '{ $.message = "commit lost arbitration" }',
    });
    bus.hasResourceProperties("AWS::CloudWatch::Alarm", {
      AlarmName: "canon-bus-core-conflict-rate",
      Metrics: Match.arrayWith([Match.objectLike({ Expression: Match.stringLikeRegexp("conflicts / commits") })]),
    });
    bus.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
  });

  it("archives to a versioned, TLS-only, public-access-blocked bucket with its own rotating key, kept for ever", () => {
    const bus = template(core);
    const [keyId] = one(
      resources(templates.get(core), "AWS::KMS::Alias")
        .filter(([, a]) => a.Properties.AliasName === archiveKeyAlias("canon", "core"))
        .map(([, a]) => [target(a.Properties.TargetKeyId)]),
      "archive key alias",
    );
    bus.hasResource("AWS::KMS::Key", {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: "Retain",
    });
    expect(templates.get(core).Resources[keyId].DeletionPolicy).toBe("Retain");
    const archive = archiveBucket(core);
    expect(archive.DeletionPolicy).toBe("Retain");
    expect(archive.Properties).toMatchObject({
      BucketName: { "Fn::Join": ["", ["canon-core-archive-", { Ref: "AWS::AccountId" }, "-", { Ref: "AWS::Region" }]] },
      VersioningConfiguration: { Status: "Enabled" },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: "aws:kms",
              KMSMasterKeyID: { "Fn::GetAtt": [keyId, "Arn"] },
            },
          },
        ],
      },
    });
    expect(archive.Properties.ObjectLockEnabled).toBeUndefined(); // an option (below)
    expect(archive.Properties.ReplicationConfiguration).toBeUndefined();
    bus.hasResourceProperties("AWS::S3::BucketPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Action: "s3:*", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
    // No autoDeleteObjects: it would add a helper function with no canon:role.
    bus.resourceCountIs("Custom::S3AutoDeleteObjects", 0);
    bus.hasResourceProperties("AWS::SSM::Parameter", {
      Name: "/canon/canon/bus/core/archive-bucket",
      Value: { Ref: archiveBucketId(core) },
    });
  });

  it("tiers archive objects down, never expires a current version, and expires old versions after a year", () => {
    const rules: Json[] = archiveBucket(core).Properties.LifecycleConfiguration.Rules;
    for (const prefix of ["archive/", "claims/"]) {
      expect(rules).toContainEqual(
        expect.objectContaining({
          Prefix: prefix,
          Status: "Enabled",
          Transitions: [
            { StorageClass: "STANDARD_IA", TransitionInDays: 30 },
            { StorageClass: "GLACIER_IR", TransitionInDays: 90 },
          ],
        }),
      );
    }
    expect(rules).toContainEqual(expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 365 } }));
    for (const rule of rules) {
      expect(rule.ExpirationInDays, rule.Id).toBeUndefined();
      expect(rule.ExpirationDate, rule.Id).toBeUndefined();
    }
  });

  it("archives from the stream in big batches, with bisection, bounded retries and record age, and its own failure queue", () => {
    const json = templates.get(core);
    const [failuresId] = one(
      resources(json, "AWS::SQS::Queue").filter(
        ([, q]) => q.Properties.QueueName === `canon-${ids.archiverFailureQueue("core")}`,
      ),
      "archiver failures queue",
    );
    const [, mapping] = one(
      resources(json, "AWS::Lambda::EventSourceMapping").filter(
        ([, m]) => target(m.Properties.FunctionName) === lambdaOf(core, "core-archiver"),
      ),
      "archiver mapping",
    );
    expect(mapping.Properties).toMatchObject({
      StartingPosition: "TRIM_HORIZON",
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 5,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10_000,
      // Given up on while the stream still holds the records (6 h of 24) to archive them again;
      // the iterator-age alarm (12 h) fires before.
      MaximumRecordAgeInSeconds: 18 * 3600,
      DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [failuresId, "Arn"] } } },
    });
    template(core).hasResourceProperties("AWS::CloudWatch::Alarm", {
      AlarmName: "canon-bus-core-archiver-failures-dead-letters",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [failuresId, "QueueName"] } }],
    });
    const [, queue] = one(
      resources(json, "AWS::SQS::Queue").filter(([id]) => id === failuresId),
      "failures queue",
    );
    expect(queue.Properties.FifoQueue).toBeUndefined(); // Lambda sends stream failures to standard queues only
  });

  it("lets the archiver read its stream and read and write its archive, never delete from it", () => {
    const statements = statementsOf(core, "core-archiver");
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions).toEqual(
      expect.arrayContaining([
        "kinesis:GetRecords",
        "kinesis:ListShards",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
      ]),
    );
    expect(actions.filter((a) => /^s3:(Delete|\*)|sns:Publish/.test(a))).toEqual([]);
    expectTelemetryWritesOnly(statements);
    const objects = one(
      statements.filter((s) => [s.Action].flat().includes("s3:PutObject")),
      "object statement",
    );
    expect(objects.Resource).toEqual({ "Fn::Join": ["", [{ "Fn::GetAtt": [archiveBucketId(core), "Arn"] }, "/*"]] });
  });

  it("catalogs the archive in Glue, partitions projected by day and shard, and a view with the local SQL columns", () => {
    const bus = template(core);
    bus.hasResourceProperties("AWS::Glue::Database", { DatabaseInput: { Name: "canon_core" } });
    bus.hasResourceProperties("AWS::Glue::Table", {
      DatabaseName: "canon_core",
      TableInput: {
        Name: "archived_records",
        TableType: "EXTERNAL_TABLE",
        PartitionKeys: [
          Match.objectLike({ Name: "dt", Type: "string" }),
          Match.objectLike({ Name: "shard", Type: "string" }),
        ],
        Parameters: Match.objectLike({
          "projection.enabled": "true",
          "projection.dt.type": "date",
          "projection.dt.format": "yyyy-MM-dd",
          "projection.dt.range": "2026-01-01,NOW",
          "projection.shard.type": "enum",
          "projection.shard.values": Match.stringLikeRegexp("^shardId-000000000000,shardId-000000000001,"),
          "storage.location.template": {
            // Athena's own placeholders, filled per partition.
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${dt} and ${shard}
            "Fn::Join": ["", ["s3://", { Ref: archiveBucketId(core) }, "/archive/bus=core/dt=${dt}/shard=${shard}/"]],
          },
        }),
        StorageDescriptor: Match.objectLike({
          SerdeInfo: { SerializationLibrary: "org.openx.data.jsonserde.JsonSerDe", Parameters: Match.anyValue() },
        }),
      },
    });
    const [, view] = one(
      resources(templates.get(core), "AWS::Glue::Table").filter(([, t]) => t.Properties.TableInput.Name === "events"),
      "events view",
    );
    const input = view.Properties.TableInput;
    expect(input.TableType).toBe("VIRTUAL_VIEW");
    // The same column names as `canon archive sql`'s table (shared/archive/sql.ts), in order.
    expect(input.StorageDescriptor.Columns.map((c: Json) => c.Name)).toEqual(Object.keys(eventColumns));
    expect(eventViewColumns).toEqual(Object.keys(eventColumns));
    const encoded = /^\/\* Presto View: (.+) \*\/$/.exec(input.ViewOriginalText)?.[1] ?? "";
    const definition = JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
    expect(definition).toMatchObject({ catalog: "awsdatacatalog", schema: "canon_core" });
    expect(definition.columns.map((c: Json) => c.name)).toEqual(Object.keys(eventColumns));
    expect(definition.originalSql).toMatch(/CROSS JOIN UNNEST\(c\."commit"\.events\)/);
    expect(definition.originalSql).toMatch(/row_number\(\) OVER \(PARTITION BY shardid, sequencenumber/); // a record once
    bus.hasResourceProperties("AWS::Athena::NamedQuery", {
      QueryString: Match.stringLikeRegexp("^CREATE OR REPLACE VIEW events AS"),
    });
  });

  it("projects shard ids well past the planned ones, so the shards of a resharded stream stay queryable", () => {
    const shardValues = (json: Json) =>
      String(
        one(
          resources(json, "AWS::Glue::Table").filter(([, t]) => t.Properties.TableInput.Name === "archived_records"),
          "records table",
        )[1].Properties.TableInput.Parameters["projection.shard.values"],
      ).split(",");
    const id = (n: number) => `shardId-${String(n).padStart(12, "0")}`;
    // 2 planned shards; doubled to 4 they become shardId-000000000002 to …005, and so on.
    const values = shardValues(templates.get(core));
    expect(values).toEqual(Array.from({ length: 64 }, (_, n) => id(n)));
    expect(values).toContain("shardId-000000000008");
    // An enum, not `injected`: a SELECT without a shard filter (the events view) must work.
    template(core).hasResourceProperties("AWS::Glue::Table", {
      TableInput: { Parameters: Match.objectLike({ "projection.shard.type": "enum" }) },
    });
    expect(shardIdsFor(4)).toHaveLength(128); // 32 per planned shard, at least 64

    // A stream resharded past the default: canon:archiveShardIds raises it.
    const scope = testApp({ "canon:archiveShardIds": "200" });
    applyCanonChecks(scope, plan);
    const { archiveShardIds } = stacksPropsFromContext(scope);
    const wide = new BusStack(scope, "Canon-Bus-core", { plan, bus: "core", archiveShardIds });
    const wider = shardValues(Template.fromStack(wide).toJSON());
    expect(wider).toHaveLength(200);
    expect(wider.at(-1)).toBe(id(199));
    expect(() => stacksPropsFromContext(testApp({ "canon:archiveShardIds": "lots" }))).toThrow(/canon:archiveShardIds/);
    expect(() => shardIdsFor(2, 1)).toThrow(/shard ids/);
    expect(() => shardIdsFor(2, 20_000)).toThrow(/shard ids/);
  });

  it("queries in an Athena workgroup that enforces encrypted results, its engine and a scan cap", () => {
    const bus = template(core);
    const [keyId] = resources(templates.get(core), "AWS::KMS::Alias")
      .filter(([, a]) => a.Properties.AliasName === archiveKeyAlias("canon", "core"))
      .map(([, a]) => target(a.Properties.TargetKeyId));
    bus.hasResourceProperties("AWS::Athena::WorkGroup", {
      Name: "canon-core-archive",
      WorkGroupConfiguration: {
        EnforceWorkGroupConfiguration: true,
        PublishCloudWatchMetricsEnabled: true,
        BytesScannedCutoffPerQuery: 100 * 1024 ** 3,
        EngineVersion: { SelectedEngineVersion: "Athena engine version 3" },
        ResultConfiguration: {
          EncryptionConfiguration: { EncryptionOption: "SSE_KMS", KmsKey: { "Fn::GetAtt": [keyId, "Arn"] } },
          OutputLocation: Match.anyValue(),
        },
      },
    });
    const results = resources(templates.get(core), "AWS::S3::Bucket").filter(
      ([, b]) => b.Properties.BucketName === undefined,
    );
    const [, bucket] = one(results, "results bucket");
    expect(bucket.Properties.LifecycleConfiguration.Rules).toContainEqual(
      expect.objectContaining({ ExpirationInDays: 30 }),
    );
    expect(bucket.Properties.PublicAccessBlockConfiguration.BlockPublicPolicy).toBe(true);
  });

  it("exists for the analytics bus too, with its own stream, but no topic, relay or archive (law K)", () => {
    const analytics = template(stacks.buses.get("analytics") as Stack);
    analytics.hasResourceProperties("AWS::Kinesis::Stream", { Name: "canon-analytics", ShardCount: 1 });
    analytics.hasResourceProperties("AWS::SSM::Parameter", { Name: "/canon/canon/bus/analytics/stream-arn" });
    analytics.resourceCountIs("AWS::SNS::Topic", 0);
    analytics.resourceCountIs("AWS::SSM::Parameter", 1);
    const roles = resources(analytics.toJSON(), "AWS::Lambda::Function").map(([, f]) => tag(f, "canon:role"));
    expect(roles).toEqual(["journeys"]);
  });

  it("relays by polling unless the bus declares otherwise: no stream consumer is registered", () => {
    for (const json of templates.values()) expect(resources(json, "AWS::Kinesis::StreamConsumer")).toEqual([]);
    const [, mapping] = one(
      resources(templates.get(core), "AWS::Lambda::EventSourceMapping").filter(
        ([, m]) => target(m.Properties.FunctionName) === lambdaOf(core, "core-relay"),
      ),
      "relay mapping",
    );
    expect(target(mapping.Properties.EventSourceArn)).toBe(
      one(resources(templates.get(core), "AWS::Kinesis::Stream"), "stream")[0],
    );
  });
});

describe("a bus whose relay reads by enhanced fan-out", () => {
  const efo = synthesize({
    ...definition,
    buses: definition.buses.map((bus) => (bus.name === "core" ? { ...bus, relayReadsBy: "enhanced-fan-out" } : bus)),
  });
  const efoCore = efo.stacks.buses.get("core") as Stack;
  const json = efo.templates.get(efoCore);
  const [streamId] = one(resources(json, "AWS::Kinesis::Stream"), "stream");
  const mappingOf = (from: Json, stack: Stack, functionId: string) => {
    const [id] = one(
      resources(from, "AWS::Lambda::Function").filter(([, r]) => tag(r, "canon:function") === functionId),
      functionId,
    );
    return one(
      resources(from, "AWS::Lambda::EventSourceMapping").filter(([, m]) => target(m.Properties.FunctionName) === id),
      `${functionId} mapping in ${stack.stackName}`,
    )[1];
  };

  it("registers one stream consumer on the bus's stream, named for the relay", () => {
    const [, consumer] = one(resources(json, "AWS::Kinesis::StreamConsumer"), "stream consumer");
    expect(consumer.Properties).toMatchObject({
      ConsumerName: "canon-core-relay",
      StreamARN: { "Fn::GetAtt": [streamId, "Arn"] },
    });
    // The analytics bus did not ask for one.
    expect(
      resources(efo.templates.get(efo.stacks.buses.get("analytics") as Stack), "AWS::Kinesis::StreamConsumer"),
    ).toEqual([]);
  });

  it("maps the relay to the consumer's ARN, with the polling mapping's batching, retries, record age and failure queue", () => {
    const [consumerId] = one(resources(json, "AWS::Kinesis::StreamConsumer"), "stream consumer");
    const relay = mappingOf(json, efoCore, "core-relay");
    expect(relay.Properties.EventSourceArn).toEqual({ "Fn::GetAtt": [consumerId, "ConsumerARN"] });
    const polling = mappingOf(templates.get(core), core, "core-relay");
    const { EventSourceArn: _efo, FunctionName: _f1, ...efoRest } = relay.Properties;
    const { EventSourceArn: _poll, FunctionName: _f2, ...pollingRest } = polling.Properties;
    expect(efoRest).toEqual(pollingRest);
    expect(efoRest).toMatchObject({
      BatchSize: 100,
      MaximumRetryAttempts: 10_000,
      MaximumRecordAgeInSeconds: 18 * 3600,
    });
  });

  it("keeps the archiver polling the stream, as before", () => {
    const archiver = mappingOf(json, efoCore, "core-archiver");
    expect(archiver.Properties.EventSourceArn).toEqual({ "Fn::GetAtt": [streamId, "Arn"] });
    const { FunctionName: _f1, ...efoRest } = archiver.Properties;
    const { FunctionName: _f2, ...pollingRest } = mappingOf(templates.get(core), core, "core-archiver").Properties;
    expect(efoRest).toEqual(pollingRest);
  });

  it("lets the relay subscribe to the shards through that consumer only, and write no stream", () => {
    const [consumerId] = one(resources(json, "AWS::Kinesis::StreamConsumer"), "stream consumer");
    const [roleId] = one(
      resources(json, "AWS::IAM::Role").filter(([, r]) =>
        JSON.stringify(r.Properties.Description ?? "").includes("relay core-relay"),
      ),
      "relay role",
    );
    const statements = resources(json, "AWS::IAM::Policy")
      .filter(([, p]) => p.Properties.Roles.some((r: Json) => target(r) === roleId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
    const onConsumer = one(
      statements.filter((s: Json) => [s.Resource].flat().some((r: Json) => target(r) === consumerId)),
      "consumer statement",
    );
    expect(onConsumer.Action).toEqual(["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"]);
    const actions = statements.flatMap((s: Json) => [s.Action].flat());
    expect(actions.filter((a: string) => /kinesis:\*|RegisterStreamConsumer|DeregisterStreamConsumer/.test(a))).toEqual(
      [],
    );
    expectTelemetryWritesOnly(statements);
    // Nobody else may read through the relay's consumer.
    const others = resources(json, "AWS::IAM::Policy").filter(
      ([, p]) =>
        !p.Properties.Roles.some((r: Json) => target(r) === roleId) &&
        JSON.stringify(p.Properties.PolicyDocument).includes(consumerId),
    );
    expect(others).toEqual([]);
  });

  it("breaks no law and has no cdk-nag finding", () => {
    // synthesize() ran the laws' Aspect on every stack; cdk-nag over the whole app:
    expect(new AwsSolutionsChecks().validateScope(efo.app).violations).toEqual([]);
  });
});

describe("a service stack", () => {
  it("makes every queue a high-throughput FIFO queue encrypted with the service's rotating key", () => {
    const service = template(accounts);
    const [keyId] = one(resources(templates.get(accounts), "AWS::KMS::Key"), "key");
    service.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
    service.hasResourceProperties("AWS::KMS::Alias", {
      AliasName: queueKeyAlias("canon", { kind: "service", name: "accounts" }),
    });
    for (const [, queue] of resources(templates.get(accounts), "AWS::SQS::Queue")) {
      expect(queue.Properties).toMatchObject({
        FifoQueue: true,
        DeduplicationScope: "messageGroup",
        FifoThroughputLimit: "perMessageGroupId",
        MessageRetentionPeriod: 14 * 24 * 3600,
      });
      expect(target(queue.Properties.KmsMasterKeyId)).toBe(keyId);
    }
  });

  it("lets SNS use the key only for its bus's topic", () => {
    template(accounts).hasResourceProperties("AWS::KMS::Key", {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: "sns.amazonaws.com" },
            Action: ["kms:Decrypt", "kms:GenerateDataKey"],
            Condition: {
              ArnEquals: {
                "aws:SourceArn": { Ref: Match.stringLikeRegexp("^SsmParameterValuecanoncanonbuscoretopicarn") },
              },
            },
          }),
        ]),
      },
    });
  });

  it("subscribes each queue with its event types as filter policy, raw, redriving into the queue's DLQ", () => {
    const json = templates.get(transfers);
    const queues = new Map(resources(json, "AWS::SQS::Queue").map(([id, q]) => [id, q.Properties]));
    for (const subscription of plan.subscriptions.filter((s) => s.queueId.startsWith("transfers-"))) {
      const name = `canon-${subscription.queueId}.fifo`;
      const [, resource] = one(
        resources(json, "AWS::SNS::Subscription").filter(
          ([, s]) => queues.get(target(s.Properties.Endpoint))?.QueueName === name,
        ),
        name,
      );
      expect(resource.Properties).toMatchObject({
        Protocol: "sqs",
        RawMessageDelivery: true,
        FilterPolicy: { type: [...subscription.eventTypes] },
      });
      const dlq = queues.get(target(resource.Properties.RedrivePolicy.deadLetterTargetArn));
      expect(dlq?.QueueName).toBe(`canon-${subscription.queueId}-dlq.fifo`);
    }
  });

  it("maps each function to its queue in batches, reporting partial failures", () => {
    const service = template(transfers);
    const mapped = plan.functions.filter((f) => f.owner.kind === "service" && f.owner.name === "transfers");
    service.resourceCountIs("AWS::Lambda::EventSourceMapping", mapped.length);
    service.allResourcesProperties("AWS::Lambda::EventSourceMapping", {
      BatchSize: 10,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
  });

  it("gives a projection read and write on its table and no way to publish (law F)", () => {
    const statements = statementsOf(accounts, "accounts-balances");
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions).toContain("dynamodb:PutItem");
    for (const write of ["sns:Publish", "sqs:SendMessage"]) {
      expect(actions).not.toContain(write);
    }
    // Its telemetry only: the analytics bus's stream, which nothing subscribes to (law K).
    expectTelemetryWritesOnly(statements);
  });

  it("lets the saga reactor send to the accounts command queue, its key granted by alias only", () => {
    const statements = statementsOf(transfers, "transfers-saga");
    const send = one(
      statements.filter((s) => [s.Action].flat().includes("sqs:SendMessage")),
      "send statement",
    );
    expect(JSON.stringify(send.Resource)).toContain(":canon-accounts-commands.fifo");
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ["kms:Decrypt", "kms:GenerateDataKey"],
        Condition: {
          "ForAnyValue:StringEquals": {
            "kms:ResourceAliases": queueKeyAlias("canon", { kind: "service", name: "accounts" }),
          },
        },
      }),
    );
  });

  it("alarms on every queue's lag and every dead-letter queue", () => {
    const queues = plan.queues.filter((q) => q.owner.kind === "service" && q.owner.name === "accounts");
    const service = template(accounts);
    service.resourcePropertiesCountIs(
      "AWS::CloudWatch::Alarm",
      { MetricName: "ApproximateAgeOfOldestMessage" },
      queues.length,
    );
    service.resourcePropertiesCountIs(
      "AWS::CloudWatch::Alarm",
      { MetricName: "ApproximateNumberOfMessagesVisible" },
      queues.length,
    );
  });
});

describe("the API stack", () => {
  it("authorizes every route with a JWT from its user pool, with a scope: 401 without a token", () => {
    const api = template(stacks.api);
    api.hasResourceProperties("AWS::ApiGatewayV2::Authorizer", {
      AuthorizerType: "JWT",
      IdentitySource: ["$request.header.Authorization"],
      JwtConfiguration: { Issuer: Match.anyValue(), Audience: Match.anyValue() },
    });
    api.allResourcesProperties("AWS::ApiGatewayV2::Route", {
      AuthorizationType: "JWT",
      AuthorizationScopes: ["canon/invoke"],
    });
    api.hasResourceProperties("AWS::Cognito::UserPoolClient", {
      AllowedOAuthFlows: ["client_credentials"],
      GenerateSecret: true,
    });
    api.hasResourceProperties("AWS::Cognito::UserPool", {
      MfaConfiguration: "ON",
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
    });
  });

  it("throttles and writes JSON access logs", () => {
    template(stacks.api).hasResourceProperties("AWS::ApiGatewayV2::Stage", {
      StageName: "$default",
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp("\\$context.requestId") },
    });
  });

  it("takes its throttle from canon:apiRateLimit and canon:apiBurstLimit, refusing what is not a rate", () => {
    const scope = testApp({ "canon:apiRateLimit": "2000", "canon:apiBurstLimit": 4000 });
    const props = stacksPropsFromContext(scope);
    expect(props).toMatchObject({ apiRateLimit: 2000, apiBurstLimit: 4000 });
    const raised = addCanonStacks(scope, plan, props).api;
    Template.fromStack(raised).hasResourceProperties("AWS::ApiGatewayV2::Stage", {
      DefaultRouteSettings: { ThrottlingRateLimit: 2000, ThrottlingBurstLimit: 4000 },
    });
    for (const bad of ["0", "fast", "1.5"]) {
      expect(() => stacksPropsFromContext(testApp({ "canon:apiRateLimit": bad }))).toThrow(
        /canon:apiRateLimit must be a whole number of requests a second/,
      );
    }
  });

  it("alarms on 5xx answers", () => {
    template(stacks.api).hasResourceProperties("AWS::CloudWatch::Alarm", {
      AlarmName: "canon-api-http-5xx",
      MetricName: "5xx",
      Namespace: "AWS/ApiGateway",
    });
  });

  it("can use IAM (SigV4) or your own OpenID Connect issuer instead", () => {
    const iam = addCanonStacks(testApp(), plan, { apiAuth: { kind: "iam" } }).api;
    Template.fromStack(iam).allResourcesProperties("AWS::ApiGatewayV2::Route", { AuthorizationType: "AWS_IAM" });
    Template.fromStack(iam).resourceCountIs("AWS::Cognito::UserPool", 0);
    const jwt = addCanonStacks(testApp(), plan, {
      apiAuth: { kind: "jwt", issuer: "https://id.example.com/", audience: ["canon"] },
    }).api;
    Template.fromStack(jwt).hasResourceProperties("AWS::ApiGatewayV2::Authorizer", {
      JwtConfiguration: { Issuer: "https://id.example.com/", Audience: ["canon"] },
    });
  });
});

describe("every stack", () => {
  it("runs its functions on Node.js 24, arm64, traced, each tagged with its canon:role", () => {
    const roles = new Set(plan.functions.map((fn) => fn.role));
    for (const json of templates.values()) {
      for (const [, fn] of resources(json, "AWS::Lambda::Function")) {
        expect(fn.Properties).toMatchObject({ Runtime: "nodejs24.x", Architectures: ["arm64"] });
        const role = fn.Properties.Tags.find((t: Json) => t.Key === "canon:role")?.Value;
        expect(roles).toContain(role);
      }
    }
  });

  it("has no unsuppressed cdk-nag (AwsSolutions) finding", () => {
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources[0]?.constructPath}`)).toEqual([]);
  });

  it("suppresses cdk-nag findings only with a reason, and only these", () => {
    const acknowledged = new Map<string, string>();
    const visit = (node: IConstruct) => {
      for (const entry of node.node.metadata) {
        if (entry.type !== "aws:cdk:acknowledged-rules") continue;
        for (const [id, value] of Object.entries(entry.data as Record<string, Json>)) {
          const reason = typeof value === "string" ? value : value?.reason;
          expect(reason, `${node.node.path} ${id}`).toMatch(/\w{10}/);
          // Logical ids end in a hash: the finding, not the hash, is what is acknowledged.
          acknowledged.set(
            id
              .replace(/^annotation::/i, "")
              .replace(/[0-9A-F]{8,}(?=(\.Arn|Parameter)>)/g, "")
              .replace(/<\w+ReplayerFunction\.Arn>/g, "<ReplayerFunction.Arn>"),
            reason,
          );
        }
      }
      for (const child of node.node.children) visit(child);
    };
    visit(app);
    expect([...acknowledged.keys()].sort()).toEqual(
      [
        "AwsSolutions-COG8",
        "AwsSolutions-IAM5[Resource::*]",
        // The archive's objects: the bus's own functions, by reference; services', through SSM.
        "AwsSolutions-IAM5[Resource::<ArchiveBucket.Arn>/*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<SsmParameterValuecanoncanonbuscorearchivebucketParameter>/*]",
        // Server access logs cannot go to an SSE-KMS bucket.
        "AwsSolutions-S1",
        // The telemetry bus's delivery stream (infra/telemetry-store.ts): it names its files, and its
        // source stream, not the delivery stream, encrypts the records in flight.
        ...plan.telemetry.flatMap(() => ["AwsSolutions-IAM5[Resource::<TelemetryBucket.Arn>/*]", "AwsSolutions-KDF1"]),
        // The operator console's hop latency panel: Athena reads the files and writes its results as the caller.
        ...plan.telemetry.flatMap((t) =>
          [t.prefix, "athena-results/"].map(
            (prefix) =>
              `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${t.bucket}-<AWS::AccountId>-<AWS::Region>/${prefix}*]`,
          ),
        ),
        // The operator console's policy (infra/console-access.ts): every bus's archive objects, the
        // app's SSM parameters, and the executions of each warm-up state machine.
        ...plan.buckets.map(
          ({ bus }) =>
            `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<SsmParameterValuecanoncanonbus${bus}archivebucketParameter>/*]`,
        ),
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/canon/canon/*]",
        ...plan.functions
          .filter((fn) => fn.startsDetached === true)
          .map(
            (fn) =>
              `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:canon-${fn.id}-warm-up:*]`,
          ),
        // A warm-up state machine invokes its replayer (and its versions), where the app has one.
        ...(plan.functions.some((fn) => fn.role === "replayer")
          ? ["AwsSolutions-IAM5[Resource::<ReplayerFunction.Arn>:*]"]
          : []),
      ]
        .filter((id, index, ids) => ids.indexOf(id) === index)
        .sort(),
    );
  });
});

describe("alarms reach someone", () => {
  const alarmsJson = templates.get(stacks.alarms);
  const [topicId, topic] = one(resources(alarmsJson, "AWS::SNS::Topic"), "alarm topic");

  /** An ARN as text, `${AWS::Region}` style; a Ref to the alarm topic in its own stack as its ARN. */
  function arnText(json: Json, value: Json): string {
    if (typeof value === "string") return value;
    if (value?.Ref !== undefined) {
      const resource = json.Resources?.[value.Ref];
      if (resource?.Type === "AWS::SNS::Topic") {
        return `arn:\${AWS::Partition}:sns:\${AWS::Region}:\${AWS::AccountId}:${resource.Properties.TopicName}`;
      }
      return `\${${value.Ref}}`;
    }
    if (value?.["Fn::Join"])
      return value["Fn::Join"][1].map((part: Json) => arnText(json, part)).join(value["Fn::Join"][0]);
    return JSON.stringify(value);
  }
  const appTopicArn = `arn:\${AWS::Partition}:sns:\${AWS::Region}:\${AWS::AccountId}:${alarmTopicName("canon")}`;

  it("sends every alarm of the app to one topic, KMS-encrypted with its own rotating key and TLS only", () => {
    expect(topic.Properties.TopicName).toBe("canon-alarms");
    const keyId = target(topic.Properties.KmsMasterKeyId);
    const key = alarmsJson.Resources[keyId];
    expect(key.Type).toBe("AWS::KMS::Key");
    expect(key.Properties.EnableKeyRotation).toBe(true);
    // CloudWatch encrypts what it publishes with the topic's key: it must be in the key policy.
    expect(key.Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
      }),
    );
    const statements = one(
      resources(alarmsJson, "AWS::SNS::TopicPolicy").filter(([, p]) =>
        p.Properties.Topics.some((t: Json) => target(t) === topicId),
      ),
      "topic policy",
    )[1].Properties.PolicyDocument.Statement;
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
    );
    const publish: Json = one(
      statements.filter((st: Json) => st.Effect === "Allow"),
      "allow statement",
    );
    expect(publish).toMatchObject({ Principal: { Service: "cloudwatch.amazonaws.com" }, Action: "sns:Publish" });
    expect(publish.Condition.StringEquals).toEqual({ "aws:SourceAccount": { Ref: "AWS::AccountId" } });
    expect(arnText(alarmsJson, publish.Condition.ArnLike["aws:SourceArn"])).toBe(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation pseudo parameters, rendered
      "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:canon-*",
    );
  });

  it("has every alarm of every stack notify it, firing and back to OK, found by name", () => {
    for (const stack of all) {
      const json = templates.get(stack);
      const alarms = resources(json, "AWS::CloudWatch::Alarm");
      if (stack !== stacks.alarms) expect(alarms.length, stack.stackName).toBeGreaterThan(0);
      for (const [id, alarm] of alarms) {
        expect(alarm.Properties.AlarmName, id).toMatch(/^canon-/); // what the topic policy lets publish
        for (const actions of ["AlarmActions", "OKActions"]) {
          const arns = (alarm.Properties[actions] ?? []).map((a: Json) => arnText(json, a));
          expect(arns, `${stack.stackName} ${alarm.Properties.AlarmName} ${actions}`).toEqual([appTopicArn]);
        }
      }
    }
  });

  it("also notifies a topic of yours, with canon:alarmTopicArn", () => {
    const arn = "arn:aws:sns:eu-west-1:111111111111:ops";
    const scope = testApp({ "canon:alarmTopicArn": arn });
    const bus = addCanonStacks(scope, plan, stacksPropsFromContext(scope)).buses.get("core") as Stack;
    const json = Template.fromStack(bus).toJSON();
    for (const [, alarm] of resources(json, "AWS::CloudWatch::Alarm")) {
      expect(alarm.Properties.AlarmActions.map((a: Json) => arnText(json, a))).toEqual([appTopicArn, arn]);
      expect(alarm.Properties.OKActions.map((a: Json) => arnText(json, a))).toEqual([appTopicArn, arn]);
    }
  });

  it("subscribes the addresses of canon:alarmEmail, redriving what SNS cannot deliver to an alarmed queue", () => {
    const scope = testApp({ "canon:alarmEmail": "ops@example.com, oncall@example.com" });
    expect(stacksPropsFromContext(scope).alarmEmails).toEqual(["ops@example.com", "oncall@example.com"]);
    applyCanonChecks(scope, plan);
    const stack = new AlarmsStack(scope, stackNames.alarms("canon"), {
      prefix: "canon",
      emails: alarmEmailsFromContext(scope),
    });
    scope.synth(); // the laws (a subscription redrives; a queue is encrypted) and cdk-nag hold
    expect(new AwsSolutionsChecks().validateScope(scope).violations).toEqual([]);
    const json = Template.fromStack(stack).toJSON();
    const [queueId, queue] = one(resources(json, "AWS::SQS::Queue"), "undelivered queue");
    const [, topicResource] = one(resources(json, "AWS::SNS::Topic"), "topic");
    expect(queue.Properties.QueueName).toBe("canon-alarms-undelivered");
    expect(target(queue.Properties.KmsMasterKeyId)).toBe(target(topicResource.Properties.KmsMasterKeyId));
    const subscriptions = resources(json, "AWS::SNS::Subscription").map(([, sub]) => sub.Properties);
    expect(subscriptions.map((sub) => sub.Endpoint).sort()).toEqual(["oncall@example.com", "ops@example.com"]);
    for (const sub of subscriptions) {
      expect(sub.Protocol).toBe("email");
      expect(target(sub.RedrivePolicy.deadLetterTargetArn)).toBe(queueId);
    }
    const [, undelivered] = one(resources(json, "AWS::CloudWatch::Alarm"), "undelivered alarm");
    expect(undelivered.Properties).toMatchObject({
      AlarmName: "canon-alarms-undelivered",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [queueId, "QueueName"] } }],
    });
    expect(undelivered.Properties.AlarmActions.map((a: Json) => arnText(json, a))).toEqual([appTopicArn]);
    // Without the option, no subscription (and no queue) is made.
    expect(resources(alarmsJson, "AWS::SNS::Subscription")).toEqual([]);
    expect(resources(alarmsJson, "AWS::SQS::Queue")).toEqual([]);
  });

  it("refuses an address it cannot read, naming the option", () => {
    expect(() => alarmEmailsFromContext(testApp({ "canon:alarmEmail": "ops" }))).toThrow(
      /canon:alarmEmail: "ops" is not an e-mail address/,
    );
    expect(() => alarmEmailsFromContext(testApp({ "canon:alarmEmail": 42 }))).toThrow(/canon:alarmEmail must be/);
  });
});

describe("dashboards", () => {
  /** Every dashboard name of the example app deployed to this environment. */
  function dashboardNames(env: { account: string; region: string }): string[] {
    const stacksInRegion = addCanonStacks(testApp(), plan, { env });
    return [
      ...stacksInRegion.buses.values(),
      ...stacksInRegion.services.values(),
      stacksInRegion.api,
      stacksInRegion.alarms,
    ].flatMap((stack) =>
      resources(Template.fromStack(stack).toJSON(), "AWS::CloudWatch::Dashboard").map(
        ([, d]) => d.Properties.DashboardName as string,
      ),
    );
  }

  it("are named with their region: dashboard names are per account, so two regions deploy side by side", () => {
    for (const stack of all) {
      for (const [, dashboard] of resources(templates.get(stack), "AWS::CloudWatch::Dashboard")) {
        expect(JSON.stringify(dashboard.Properties.DashboardName), stack.stackName).toContain('{"Ref":"AWS::Region"}');
      }
    }
    const ireland = dashboardNames({ account: "111111111111", region: "eu-west-1" });
    const virginia = dashboardNames({ account: "111111111111", region: "us-east-1" });
    expect(ireland).toContain("canon-eu-west-1-service-accounts");
    expect(virginia).toContain("canon-us-east-1-bus-core");
    expect(ireland).toHaveLength(all.length - 1); // one per stack with alarms
    expect(new Set([...ireland, ...virginia]).size).toBe(ireland.length + virginia.length);
  });
});

describe("archive options, from CDK context", () => {
  /** A checked bus stack of the example app, built with these context values. */
  function busWith(context: Record<string, unknown>): Json {
    const scope = testApp(context);
    applyCanonChecks(scope, plan);
    const stack = new BusStack(scope, "Canon-Bus-core", {
      plan,
      bus: "core",
      archive: archiveOptionsFromContext(scope),
    });
    scope.synth(); // the laws and cdk-nag hold with the options too
    return Template.fromStack(stack).toJSON();
  }
  const destination = "arn:aws:s3:::canon-core-archive-replica";
  const replicaKey = "arn:aws:kms:eu-central-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";

  it("locks every object version in governance or compliance mode, for the days given", () => {
    const [, governance] = one(
      resources(busWith({ "canon:archiveObjectLock": "governance:365" }), "AWS::S3::Bucket").filter(
        ([, b]) => b.Properties.BucketName !== undefined,
      ),
      "archive",
    );
    expect(governance.Properties.ObjectLockEnabled).toBe(true);
    expect(governance.Properties.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: "Enabled",
      Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 365 } },
    });
    const [, compliance] = one(
      resources(busWith({ "canon:archiveObjectLock": { mode: "compliance", days: 2555 } }), "AWS::S3::Bucket").filter(
        ([, b]) => b.Properties.BucketName !== undefined,
      ),
      "archive",
    );
    expect(compliance.Properties.ObjectLockConfiguration.Rule.DefaultRetention).toEqual({
      Mode: "COMPLIANCE",
      Days: 2555,
    });
  });

  it("replicates every object to a bucket in another region with its own key, keeping delete markers home", () => {
    const json = busWith({ "canon:archiveReplicationDestination": `${destination},${replicaKey}` });
    const [, archive] = one(
      resources(json, "AWS::S3::Bucket").filter(([, b]) => b.Properties.BucketName !== undefined),
      "archive",
    );
    const replication = archive.Properties.ReplicationConfiguration;
    expect(replication.Rules).toEqual([
      expect.objectContaining({
        Status: "Enabled",
        Destination: expect.objectContaining({
          Bucket: destination,
          EncryptionConfiguration: { ReplicaKmsKeyID: replicaKey },
        }),
        SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: "Enabled" } },
        DeleteMarkerReplication: { Status: "Disabled" },
      }),
    ]);
    const roleId = target(replication.Role);
    expect(json.Resources[roleId].Properties.AssumeRolePolicyDocument.Statement[0].Principal).toEqual({
      Service: "s3.amazonaws.com",
    });
    const statements = resources(json, "AWS::IAM::Policy")
      .filter(([, p]) => p.Properties.Roles.some((r: Json) => target(r) === roleId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
    const allowed = (action: string, resource: string) =>
      statements.some(
        (statement: Json) =>
          [statement.Action].flat().includes(action) && JSON.stringify(statement.Resource).includes(resource),
      );
    expect(allowed("s3:ReplicateObject", `${destination}/*`)).toBe(true);
    expect(allowed("s3:GetObjectVersionForReplication", "/*")).toBe(true);
    expect(allowed("kms:Encrypt", replicaKey)).toBe(true);
    expect(allowed("kms:Decrypt", "ArchiveKey")).toBe(true);
  });

  it("refuses an option it cannot read, naming it", () => {
    expect(() => busWith({ "canon:archiveObjectLock": "forever" })).toThrow(/canon:archiveObjectLock must be/);
    expect(() => busWith({ "canon:archiveReplicationDestination": destination })).toThrow(
      /canon:archiveReplicationDestination must be/,
    );
    expect(() => busWith({ "canon:archiveReplicationDestination": `my-bucket,${replicaKey}` })).toThrow(
      /must be a bucket ARN/,
    );
  });
});

describe("a projection declared with warmUp", () => {
  const warmPlan = planApp(warmUpApp);
  const scope = testApp();
  applyCanonChecks(scope, warmPlan);
  const orders = new ServiceStack(scope, "Shop-Service-orders", { plan: warmPlan, service: "orders" });
  const json = Template.fromStack(orders).toJSON();
  const fnId = (id: string) =>
    one(
      resources(json, "AWS::Lambda::Function").filter(([, f]) => tag(f, "canon:function") === id),
      id,
    )[0];
  const [machineId, machine] = one(resources(json, "AWS::StepFunctions::StateMachine"), "state machine");
  /** The state machine's definition, references rendered as `${LogicalId}`. */
  const definition = JSON.parse(
    [machine.Properties.DefinitionString]
      .flatMap((d: Json) => (typeof d === "string" ? [d] : d["Fn::Join"][1]))
      .map((part: Json) => (typeof part === "string" ? part : `\${${target(part) ?? JSON.stringify(part)}}`))
      .join(""),
  );
  const consumerMapping = () =>
    one(
      resources(json, "AWS::Lambda::EventSourceMapping").filter(
        ([, m]) => target(m.Properties.FunctionName) === fnId("orders-totals"),
      ),
      "consumer mapping",
    );

  it("creates its consumer's queue mapping disabled: the queue is subscribed and buffers (law I)", () => {
    expect(consumerMapping()[1].Properties.Enabled).toBe(false);
    const queueId = target(consumerMapping()[1].Properties.EventSourceArn);
    expect(json.Resources[queueId].Properties.QueueName).toBe("shop-orders-totals.fifo");
    one(
      resources(json, "AWS::SNS::Subscription").filter(([, sub]) => target(sub.Properties.Endpoint) === queueId),
      "the queue's subscription",
    );
    // Every other consumer is attached from the start.
    for (const [, mapping] of resources(json, "AWS::Lambda::EventSourceMapping")) {
      if (target(mapping.Properties.FunctionName) !== fnId("orders-totals"))
        expect(mapping.Properties.Enabled).toBeUndefined();
    }
  });

  it("adds its replayer: the projection module's replay export, no event source, 15 minutes a chunk", () => {
    const replayer = json.Resources[fnId("orders-totals-replayer")];
    expect(replayer.Properties).toMatchObject({ Handler: "index.replay", Timeout: 900, MemorySize: 1024 });
    expect(tag(replayer, "canon:role")).toBe("replayer");
    expect(
      resources(json, "AWS::Lambda::EventSourceMapping").filter(
        ([, m]) => target(m.Properties.FunctionName) === fnId("orders-totals-replayer"),
      ),
    ).toEqual([]);
  });

  it("lets the replayer read its bus's archive and stream, found through SSM, and write only its own table", () => {
    const role = target(json.Resources[fnId("orders-totals-replayer")].Properties.Role);
    const statements = resources(json, "AWS::IAM::Policy")
      .filter(([, p]) => p.Properties.Roles.some((r: Json) => target(r) === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
    const actions = statements.flatMap((s: Json) => [s.Action].flat());
    expect(actions).toEqual(
      expect.arrayContaining([
        "s3:GetObject",
        "s3:ListBucket",
        "kinesis:GetRecords",
        "kinesis:ListShards",
        "dynamodb:PutItem",
      ]),
    );
    expect(actions.filter((a: string) => /^s3:(Put|Delete)|PutRecord|sns:|sqs:Send|lambda:/.test(a))).toEqual([]);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: "kms:Decrypt",
        Condition: { "ForAnyValue:StringEquals": { "kms:ResourceAliases": archiveKeyAlias("shop", "core") } },
      }),
    );
    const environment = json.Resources[fnId("orders-totals-replayer")].Properties.Environment.Variables;
    expect(environment).toMatchObject({
      CANON_CONSUMER_FUNCTION: "orders-totals",
      CANON_PROJECTION_EVENTS: '["ThingDone"]',
      CANON_ARCHIVE_BUCKET: { Ref: expect.stringMatching(/^SsmParameterValuecanonshopbuscorearchivebucket/) },
    });
  });

  it("is warmed up by a state machine: subscription point, chunks until done, then the SDK enables the mapping", () => {
    const states = definition.States;
    const [start] = [definition.StartAt];
    expect(states[start].Parameters).toEqual({ "subscribedAt.$": "$$.Execution.StartTime" });
    const replay = states["Replay a chunk"];
    expect(replay).toMatchObject({
      Type: "Task",
      Resource: `\${${fnId("orders-totals-replayer")}}`,
      ResultPath: "$.chunk",
      Parameters: { "subscribedAt.$": "$.subscribedAt", "cursor.$": "$.chunk.cursor" },
      TimeoutSeconds: 960,
    });
    expect(replay.Retry).toContainEqual(
      expect.objectContaining({ ErrorEquals: ["States.TaskFailed", "States.Timeout"], MaxAttempts: 3 }),
    );
    const choice = states[replay.Next];
    expect(choice.Type).toBe("Choice");
    expect(choice.Choices[0]).toMatchObject({
      Variable: "$.chunk.done",
      BooleanEquals: true,
      Next: "Attach the consumer",
    });
    expect(choice.Choices[1]).toMatchObject({ Next: "Replay a chunk" });
    expect(states[choice.Default]).toMatchObject({ Type: "Wait", Next: "Replay a chunk" });
    const attach = states["Attach the consumer"];
    expect(attach.Resource).toMatch(/:states:::aws-sdk:lambda:updateEventSourceMapping$/);
    expect(attach.Parameters).toEqual({ UUID: `\${${consumerMapping()[0]}}`, Enabled: true });
    expect(states[attach.Next].Type).toBe("Succeed");

    expect(machine.Properties).toMatchObject({
      StateMachineName: "shop-orders-totals-warm-up",
      StateMachineType: "STANDARD",
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: expect.anything(),
    });
    expect(machine.Properties.LoggingConfiguration.Level).toBe("ALL");
    // Only after the queue is subscribed can an execution start: its start time is the subscription point.
    const subscription = one(
      resources(json, "AWS::SNS::Subscription").filter(
        ([, sub]) => target(sub.Properties.Endpoint) === target(consumerMapping()[1].Properties.EventSourceArn),
      ),
      "subscription",
    )[0];
    expect(json.Resources[machineId].DependsOn).toContain(subscription);
  });

  it("lets the state machine invoke the replayer and update that one mapping, nothing else", () => {
    const role = target(machine.Properties.RoleArn);
    const statements = resources(json, "AWS::IAM::Policy")
      .filter(([, p]) => p.Properties.Roles.some((r: Json) => target(r) === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
    const update = one(
      statements.filter((s: Json) => [s.Action].flat().includes("lambda:UpdateEventSourceMapping")),
      "update statement",
    );
    expect(JSON.stringify(update.Resource)).toContain(`"Ref":"${consumerMapping()[0]}"`);
    expect(JSON.stringify(update.Resource)).toContain(":event-source-mapping:");
    const invoke = one(
      statements.filter((s: Json) => [s.Action].flat().includes("lambda:InvokeFunction")),
      "invoke statement",
    );
    const invoked = new Set([...JSON.stringify(invoke.Resource).matchAll(/"Fn::GetAtt":\["(\w+)"/g)].map((m) => m[1]));
    expect([...invoked]).toEqual([fnId("orders-totals-replayer")]);
    const all = statements.flatMap((s: Json) => [s.Action].flat());
    expect(all.filter((a: string) => a.startsWith("lambda:")).sort()).toEqual([
      "lambda:InvokeFunction",
      "lambda:UpdateEventSourceMapping",
    ]);
  });

  it("warns at synth when the projection's module shows no replay export", () => {
    Annotations.fromStack(orders).hasNoWarning("*", Match.stringLikeRegexp("export"));
    const forgetful = planApp({
      ...warmUpApp,
      services: warmUpApp.services.map((service) => ({
        ...service,
        projections: service.projections.map((p) => (p.warmUp ? { ...p, handler: "test/infra/fixtures/shop.ts" } : p)),
      })),
    });
    const stack = new ServiceStack(testApp(), "Shop-Service-orders", { plan: forgetful, service: "orders" });
    Annotations.fromStack(stack).hasWarning(
      "/Shop-Service-orders/OrdersTotalsReplayer",
      Match.stringLikeRegexp("test/infra/fixtures/shop.ts shows no `replay` export"),
    );
  });

  it("breaks no law and has no cdk-nag finding", () => {
    expect(() => scope.synth()).not.toThrow();
    expect(new AwsSolutionsChecks().validateScope(scope).violations).toEqual([]);
  });
});

describe("a projection rebuilt by generations (blue/green by deploy)", () => {
  const shopWith = (generations: { serving: number; next?: number }) =>
    planApp({
      ...shopApp,
      services: shopApp.services.map((service) =>
        service.name !== "orders"
          ? service
          : {
              ...service,
              projections: service.projections.map((p) => (p.name === "summary" ? { ...p, generations } : p)),
            },
      ),
    });
  const synth = (plan: ReturnType<typeof planApp>) => {
    const scope = testApp();
    applyCanonChecks(scope, plan);
    const orders = new ServiceStack(scope, "Shop-Service-orders", { plan, service: "orders" });
    const api = new ApiStack(scope, "Shop-Api", { plan, auth: { kind: "iam" } });
    scope.synth();
    return { orders: Template.fromStack(orders).toJSON(), api: Template.fromStack(api).toJSON() };
  };

  it("deploys the next generation beside the serving one, detached, with its warm-up job; the API reads the serving one", () => {
    const { orders, api } = synth(shopWith({ serving: 1, next: 2 }));
    const tableNames = resources(orders, "AWS::DynamoDB::Table").map(([, t]) => t.Properties.TableName);
    expect(tableNames).toEqual(expect.arrayContaining(["shop-orders-summary", "shop-orders-summary-g2"]));
    const machines = resources(orders, "AWS::StepFunctions::StateMachine").map(
      ([, m]) => m.Properties.StateMachineName,
    );
    expect(machines).toEqual(["shop-orders-summary-g2-warm-up"]);
    const g2 = one(
      resources(orders, "AWS::Lambda::Function").filter(([, f]) => tag(f, "canon:function") === "orders-summary-g2"),
      "generation 2",
    )[0];
    const mapping = one(
      resources(orders, "AWS::Lambda::EventSourceMapping").filter(([, m]) => target(m.Properties.FunctionName) === g2),
      "its mapping",
    )[1];
    expect(mapping.Properties.Enabled).toBe(false);
    expect(JSON.stringify(api)).toContain("shop-orders-summary");
    expect(JSON.stringify(api)).not.toContain("shop-orders-summary-g2");
  });

  it("moves the API's reads once the next generation serves, and drops the old table from the template", () => {
    const { orders, api } = synth(shopWith({ serving: 2 }));
    const tableNames = resources(orders, "AWS::DynamoDB::Table").map(([, t]) => t.Properties.TableName);
    expect(tableNames).toContain("shop-orders-summary-g2");
    expect(tableNames).not.toContain("shop-orders-summary");
    expect(JSON.stringify(api)).toContain("shop-orders-summary-g2");
  });
});

describe("snapshots (asset hashes normalized)", () => {
  for (const stack of all) {
    it(stack.stackName, () => {
      expect(normalized(templates.get(stack))).toMatchSnapshot();
    });
  }
});

describe("stacks deploy and are destroyed alone", () => {
  it("share no CloudFormation exports and depend on no service stack", () => {
    const serviceStacks = new Set<Stack>(stacks.services.values());
    for (const stack of all) {
      const json = JSON.stringify(templates.get(stack));
      expect(json, stack.stackName).not.toContain("Fn::ImportValue");
      expect(json, stack.stackName).not.toContain('"Export"');
      expect(
        stack.dependencies.filter((d) => serviceStacks.has(d)),
        stack.stackName,
      ).toEqual([]);
    }
    expect(stacks.api.dependencies).toEqual([]);
    // The alarms name the alarm topic by ARN: no stack depends on its stack, whose destroy would
    // otherwise take every dependent stack with it (`cdk destroy` selects downstream stacks).
    expect(stacks.alarms.dependencies).toEqual([]);
    for (const stack of [...all, stacks.consoleAccess]) expect(stack.dependencies).not.toContain(stacks.alarms);
  });

  it("order each service after its bus and the telemetry bus, and nothing else", () => {
    for (const [name, stack] of stacks.services) {
      expect(
        stack.dependencies.map((d) => d.stackName),
        name,
      ).toEqual([stackNames.bus("canon", "core"), stackNames.bus("canon", "analytics")]);
    }
  });

  it("synthesize offline: environment-agnostic, with no context lookup left to make", () => {
    for (const stack of all) expect(stack.environment).toBe("aws://unknown-account/unknown-region");
    expect(app.synth().manifest.missing ?? []).toEqual([]);
  });
});

/** Statements that put records put them on the analytics bus's stream only (found through its SSM parameter). */
function expectTelemetryWritesOnly(statements: readonly Json[]): void {
  for (const statement of statements) {
    if (![statement.Action].flat().some((a: string) => /PutRecord/.test(a))) continue;
    expect(JSON.stringify(statement.Resource)).toMatch(/busanalyticsstreamarn|canon-analytics|AnalyticsBusStream/);
    expect(JSON.stringify(statement.Resource)).not.toMatch(/buscorestreamarn|canon-core|CoreBusStream/);
  }
}
