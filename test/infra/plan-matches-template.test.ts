/**
 * Holds the synthesized CloudFormation templates against the shared plan, so that the
 * cloud and the local cloud (both built from `planApp`) cannot drift: every planned
 * resource is there with its planned properties, and nothing else is. Run for the example app,
 * for a fixture with a warming-up projection (a detached consumer and its replayer), and for one
 * whose relay reads its stream by enhanced fan-out (a registered stream consumer).
 */
import { Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { app as example } from "../../functions/app.ts";
import { applyCanonChecks, plannedServices } from "../../infra/canon-app.ts";
import { alarmTopicName, busParameters, ownerTag, queueKeyAlias, stackNames } from "../../infra/names.ts";
import { ServiceStack } from "../../infra/service-stack.ts";
import type { Owner, PlannedFunction, ResourceRef } from "../../shared/plan.ts";
import type { AppDefinition } from "../../shared/topology.ts";
import { enhancedFanOutApp } from "./fixtures/enhanced-fan-out.ts";
import { warmUpApp } from "./fixtures/warm-up.ts";
import { type Json, one, type Resource, resources, synthesize, tag, target, testApp } from "./support.ts";

for (const [label, definition] of [
  ["the example app", example],
  ["a fixture with a warming-up projection", warmUpApp],
  ["a fixture whose relay reads by enhanced fan-out", enhancedFanOutApp],
] as [string, AppDefinition][]) {
  describe(label, () => {
    const { plan, stacks, all: allStacks, templates } = synthesize(definition);

    /**
     * Lambda functions CDK adds on its own (log retention, custom resource providers). The
     * current constructs add none; a new one must be recognized here, not slip through.
     */
    const cdkHelperFunction =
      /^(LogRetention[0-9a-f]{32}|AWS679f53fac002430cb0da5b7982bd2287|\w*CustomResourceProviderHandler)/;

    function stackOf(owner: Owner): Stack {
      const stack =
        owner.kind === "bus"
          ? stacks.buses.get(owner.name)
          : owner.kind === "service"
            ? stacks.services.get(owner.name)
            : stacks.api;
      if (!stack) throw new Error(`no stack for ${ownerTag(owner)}`);
      return stack;
    }

    function templateOf(owner: Owner): Json {
      return templates.get(stackOf(owner));
    }

    const find = {
      queue: (id: string) =>
        one(
          plan.queues.filter((q) => q.id === id),
          `planned queue ${id}`,
        ),
      table: (id: string) =>
        one(
          plan.tables.filter((t) => t.id === id),
          `planned table ${id}`,
        ),
      stream: (bus: string) =>
        one(
          plan.streams.filter((s) => s.bus === bus),
          `planned stream ${bus}`,
        ),
      topic: (bus: string) =>
        one(
          plan.topics.filter((t) => t.bus === bus),
          `planned topic ${bus}`,
        ),
      bucket: (bus: string) =>
        one(
          plan.buckets.filter((b) => b.bus === bus),
          `planned bucket ${bus}`,
        ),
    };

    function allResources(type: string): [string, Resource][] {
      return [...templates.values()].flatMap((template) => resources(template, type));
    }

    function named(template: Json, type: string, nameProperty: string, name: string): [string, Resource] {
      return one(
        resources(template, type).filter(([, resource]) => resource.Properties[nameProperty] === name),
        `${type} ${name}`,
      );
    }

    function functionOf(fn: PlannedFunction): [string, Resource] {
      const found = resources(templateOf(fn.owner), "AWS::Lambda::Function").filter(
        ([, r]) => tag(r, "canon:function") === fn.id,
      );
      return one(found, `function ${fn.id}`);
    }

    /**
     * A CloudFormation value as readable text: a reference becomes the physical name of what
     * it points at, an SSM-backed parameter becomes `ssm:<parameter name>`.
     */
    function render(template: Json, value: Json): string {
      if (typeof value === "string" || typeof value === "number") return String(value);
      if (value?.Ref !== undefined || value?.["Fn::GetAtt"] !== undefined) {
        const id = target(value);
        const parameter = template.Parameters?.[id];
        if (parameter) return `ssm:${parameter.Default}`;
        const properties = template.Resources[id]?.Properties ?? {};
        const name =
          properties.TableName ??
          properties.QueueName ??
          properties.TopicName ??
          properties.BucketName ??
          properties.Name;
        if (name === undefined) return `\${${id}}`;
        return typeof name === "string" ? name : render(template, name);
      }
      if (value?.["Fn::Join"])
        return value["Fn::Join"][1].map((part: Json) => render(template, part)).join(value["Fn::Join"][0]);
      if (value?.["Fn::Select"]) return `select(${render(template, value["Fn::Select"][1])})`;
      if (value?.["Fn::Split"]) return render(template, value["Fn::Split"][1]);
      return JSON.stringify(value);
    }

    /** What an env ref's value must point at: the physical name, or the bus's SSM parameter outside the bus. */
    function expectedTarget(fn: PlannedFunction, ref: Exclude<ResourceRef, { kind: "value" }>): string {
      switch (ref.kind) {
        case "table":
          return find.table(ref.id).name;
        case "queue":
          return find.queue(ref.id).name;
        case "stream":
          return ownsBus(fn, ref.bus)
            ? find.stream(ref.bus).name
            : `ssm:${busParameters.streamArn(plan.prefix, ref.bus)}`;
        case "topic":
          return ownsBus(fn, ref.bus)
            ? find.topic(ref.bus).name
            : `ssm:${busParameters.topicArn(plan.prefix, ref.bus)}`;
        case "bucket":
          return ownsBus(fn, ref.bus)
            ? awsBucketName(find.bucket(ref.bus).name)
            : `ssm:${busParameters.archiveBucket(plan.prefix, ref.bus)}`;
      }
    }

    /** A planned (local) bucket name as the bus stack makes it unique on AWS. */
    function awsBucketName(localName: string): string {
      return `${localName}-\${AWS::AccountId}-\${AWS::Region}`;
    }

    function ownsBus(fn: PlannedFunction, bus: string): boolean {
      return fn.owner.kind === "bus" && fn.owner.name === bus;
    }

    /** The statements of the function's role policies. */
    function statementsOf(fn: PlannedFunction): Json[] {
      const role = target(functionOf(fn)[1].Properties.Role);
      return resources(templateOf(fn.owner), "AWS::IAM::Policy")
        .filter(([, policy]) => policy.Properties.Roles.some((r: Json) => target(r) === role))
        .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement);
    }

    /** The actions the function's role may take on the resource `name` points at. */
    function actionsOn(fn: PlannedFunction, name: string): Set<string> {
      const template = templateOf(fn.owner);
      const names = [name, `${name}/*`]; // a bucket, and its objects
      const onName = (statement: Json) =>
        [statement.Resource]
          .flat()
          .map((r: Json) => render(template, r))
          .some((t: string) => names.some((n) => t === n || t.endsWith(`/${n}`) || t.endsWith(`:${n}`)));
      return new Set(
        statementsOf(fn)
          .filter(onName)
          .flatMap((statement) => [statement.Action].flat()),
      );
    }

    describe("the synthesized templates match the plan", () => {
      it("has one stack per bus, one per service, one for the API and one for the alarm topic", () => {
        expect(allStacks.map((stack) => stack.stackName).sort()).toEqual(
          [
            ...plan.streams.map((s) => stackNames.bus(plan.prefix, s.bus)),
            ...plannedServices(plan).map((s) => stackNames.service(plan.prefix, s)),
            stackNames.api(plan.prefix),
            stackNames.alarms(plan.prefix),
          ].sort(),
        );
      });

      it("creates every planned stream, KMS-encrypted and retained", () => {
        for (const stream of plan.streams) {
          const template = templateOf({ kind: "bus", name: stream.bus });
          const [, resource] = named(template, "AWS::Kinesis::Stream", "Name", stream.name);
          expect(resource.Properties).toMatchObject({
            ShardCount: stream.shards,
            RetentionPeriodHours: stream.retentionHours,
            StreamEncryption: { EncryptionType: "KMS" },
          });
          expect(resource.DeletionPolicy).toBe("Retain");
        }
      });

      it("creates every planned topic as a KMS-encrypted FIFO topic, and publishes its bus in SSM", () => {
        for (const topic of plan.topics) {
          const template = templateOf({ kind: "bus", name: topic.bus });
          const [, resource] = named(template, "AWS::SNS::Topic", "TopicName", topic.name);
          expect(resource.Properties.FifoTopic).toBe(true);
          expect(render(template, resource.Properties.KmsMasterKeyId)).toMatch(/alias\/aws\/sns$/);
          const streamArn = named(
            template,
            "AWS::SSM::Parameter",
            "Name",
            busParameters.streamArn(plan.prefix, topic.bus),
          );
          const topicArn = named(
            template,
            "AWS::SSM::Parameter",
            "Name",
            busParameters.topicArn(plan.prefix, topic.bus),
          );
          expect(render(template, streamArn[1].Properties.Value)).toBe(find.stream(topic.bus).name);
          expect(render(template, topicArn[1].Properties.Value)).toBe(topic.name);
        }
      });

      it("creates every planned archive bucket, versioned, KMS-encrypted and retained, and publishes its name in SSM", () => {
        for (const bucket of plan.buckets) {
          const template = templateOf(bucket.owner);
          const [bucketId, resource] = one(
            resources(template, "AWS::S3::Bucket").filter(
              ([, b]) =>
                b.Properties.BucketName && render(template, b.Properties.BucketName) === awsBucketName(bucket.name),
            ),
            `bucket ${bucket.name}`,
          );
          expect(resource.Properties.VersioningConfiguration).toEqual({ Status: "Enabled" });
          expect(
            resource.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault
              .SSEAlgorithm,
          ).toBe("aws:kms");
          expect(resource.DeletionPolicy).toBe("Retain");
          const [, parameter] = named(
            template,
            "AWS::SSM::Parameter",
            "Name",
            busParameters.archiveBucket(plan.prefix, bucket.bus),
          );
          expect(target(parameter.Properties.Value)).toBe(bucketId);
        }
      });

      it("creates every planned queue, FIFO where planned, KMS-encrypted, with its dead-letter queue", () => {
        for (const queue of plan.queues) {
          const template = templateOf(queue.owner);
          const [, resource] = named(template, "AWS::SQS::Queue", "QueueName", queue.name);
          const [dlqId, dlq] = named(template, "AWS::SQS::Queue", "QueueName", queue.deadLetterQueueName);
          const [, alias] = named(template, "AWS::KMS::Alias", "AliasName", queueKeyAlias(plan.prefix, queue.owner));
          const keyId = target(alias.Properties.TargetKeyId);
          expect(resource.Properties).toMatchObject({
            VisibilityTimeout: queue.visibilityTimeoutSeconds,
            RedrivePolicy: { maxReceiveCount: queue.maxReceiveCount },
          });
          for (const properties of [resource.Properties, dlq.Properties]) {
            expect(properties.FifoQueue, queue.name).toBe(queue.fifo ? true : undefined);
            expect(target(properties.KmsMasterKeyId), queue.name).toBe(keyId);
          }
          expect(target(resource.Properties.RedrivePolicy.deadLetterTargetArn)).toBe(dlqId);
        }
      });

      it("creates every planned table on demand, with PITR and encryption, retained", () => {
        for (const table of plan.tables) {
          const [, resource] = named(templateOf(table.owner), "AWS::DynamoDB::Table", "TableName", table.name);
          const sorted = table.sortKey === undefined ? [] : [table.sortKey];
          expect(resource.Properties).toMatchObject({
            KeySchema: [
              { AttributeName: table.partitionKey, KeyType: "HASH" },
              ...sorted.map((key) => ({ AttributeName: key, KeyType: "RANGE" })),
            ],
            AttributeDefinitions: [table.partitionKey, ...sorted].map((key) => ({
              AttributeName: key,
              AttributeType: "S",
            })),
            BillingMode: "PAY_PER_REQUEST",
            PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
            SSESpecification: { SSEEnabled: true },
          });
          expect(resource.DeletionPolicy).toBe("Retain");
          expect(resource.Properties.TimeToLiveSpecification).toEqual(
            table.timeToLiveAttribute === undefined
              ? undefined
              : { AttributeName: table.timeToLiveAttribute, Enabled: true },
          );
        }
      });

      it("delivers every planned telemetry store's stream to Parquet files, typed by its Glue table", () => {
        for (const store of plan.telemetry) {
          const template = templateOf(store.owner);
          const [, delivery] = named(
            template,
            "AWS::KinesisFirehose::DeliveryStream",
            "DeliveryStreamName",
            store.deliveryStream,
          );
          expect(delivery.Properties.DeliveryStreamType).toBe("KinesisStreamAsSource");
          const s3 = delivery.Properties.ExtendedS3DestinationConfiguration;
          expect(s3.Prefix).toBe(`${store.prefix}dt=!{timestamp:yyyy-MM-dd-HH}/`);
          expect(s3.DataFormatConversionConfiguration.SchemaConfiguration).toMatchObject({
            DatabaseName: store.database,
            TableName: store.table,
          });
          const [, glueTable] = one(
            resources(template, "AWS::Glue::Table").filter(([, t]) => t.Properties.TableInput.Name === store.table),
            `Glue table ${store.table}`,
          );
          expect(glueTable.Properties.DatabaseName).toBe(store.database);
          named(template, "AWS::Athena::WorkGroup", "Name", store.workGroup);
        }
      });

      it("subscribes every planned queue to its bus's topic, found through SSM, filtered by event type", () => {
        for (const subscription of plan.subscriptions) {
          const queue = find.queue(subscription.queueId);
          const template = templateOf(queue.owner);
          const [queueId] = named(template, "AWS::SQS::Queue", "QueueName", queue.name);
          const [, resource] = one(
            resources(template, "AWS::SNS::Subscription").filter(([, s]) => target(s.Properties.Endpoint) === queueId),
            `subscription of ${queue.name}`,
          );
          expect(resource.Properties).toMatchObject({ Protocol: "sqs", RawMessageDelivery: true });
          expect(resource.Properties.FilterPolicy).toEqual({ type: [...subscription.eventTypes] });
          expect(render(template, resource.Properties.TopicArn)).toBe(
            `ssm:${busParameters.topicArn(plan.prefix, subscription.bus)}`,
          );
          // The queue lets that topic, and nothing else, send to it.
          const allow = one(
            resources(template, "AWS::SQS::QueuePolicy")
              .filter(([, p]) => p.Properties.Queues.some((q: Json) => target(q) === queueId))
              .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
              .filter((statement: Json) => statement.Effect === "Allow"),
            `allow statements on ${queue.name}`,
          );
          expect(allow.Principal).toEqual({ Service: "sns.amazonaws.com" });
          expect(render(template, allow.Condition.ArnEquals["aws:SourceArn"])).toBe(
            render(template, resource.Properties.TopicArn),
          );
        }
      });

      it("creates every planned function on Node.js 24 and arm64, tagged, with its planned export and environment", () => {
        for (const fn of plan.functions) {
          const template = templateOf(fn.owner);
          const [, resource] = functionOf(fn);
          expect(resource.Properties).toMatchObject({
            Runtime: "nodejs24.x",
            Architectures: ["arm64"],
            TracingConfig: { Mode: "Active" },
            Handler: `index.${fn.handlerExport ?? "handler"}`,
          });
          expect(tag(resource, "canon:role")).toBe(fn.role);
          expect(tag(resource, "canon:owner")).toBe(ownerTag(fn.owner));
          const variables = resource.Properties.Environment.Variables;
          for (const [name, ref] of Object.entries(fn.env)) {
            expect(variables, `${fn.id} env`).toHaveProperty(name);
            const rendered = render(template, variables[name]);
            if (ref.kind === "value") expect(rendered).toBe(ref.value);
            else expect(rendered, `${fn.id} ${name}`).toContain(expectedTarget(fn, ref));
          }
        }
      });

      it("grants each function exactly the access its environment names", () => {
        for (const fn of plan.functions) {
          const writesTo = new Set<string>();
          for (const ref of Object.values(fn.env)) {
            if (ref.kind === "value") continue;
            const name = expectedTarget(fn, ref);
            const actions = actionsOn(fn, name);
            const label = `${fn.id} → ${name}`;
            if (ref.kind === "table") {
              expect(actions, label).toContain("dynamodb:GetItem");
              if (ref.access === "readWrite") writesTo.add(name);
            }
            if (ref.kind === "queue") expect(actions, label).toContain("sqs:SendMessage");
            if (ref.kind === "stream" && ref.access === "write") expect(actions, label).toContain("kinesis:PutRecord");
            if (ref.kind === "stream" && ref.access === "read") {
              expect(actions, label).toContain("kinesis:GetRecords");
              expect(actions, label).toContain("kinesis:ListShards");
            }
            if (ref.kind === "bucket") {
              expect(actions, label).toContain("s3:GetObject");
              expect(actions, label).toContain("s3:ListBucket");
              expect(actions.has("s3:PutObject"), label).toBe(ref.access === "readWrite");
              expect(
                [...actions].filter((a) => a.startsWith("s3:Delete")),
                label,
              ).toEqual([]);
            }
            if (ref.kind === "topic") expect(actions, label).toContain("sns:Publish");
          }
          // Table writes only where the plan says readWrite.
          const writes = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"];
          const written = plan.tables
            .filter((t) => writes.some((w) => actionsOn(fn, t.name).has(w)))
            .map((t) => t.name);
          expect(new Set(written), `${fn.id} writes`).toEqual(writesTo);
          // No capability without a ref: in particular, fanout consumers publish nothing (law F).
          const actions = statementsOf(fn).flatMap((statement) => [statement.Action].flat());
          const refs = Object.values(fn.env);
          const kinds = new Set(refs.map((ref) => ref.kind));
          if (!refs.some((r) => r.kind === "stream" && r.access === "write"))
            expect(actions, fn.id).not.toContain("kinesis:PutRecord");
          if (!refs.some((r) => r.kind === "bucket" && r.access === "readWrite"))
            expect(actions, fn.id).not.toContain("s3:PutObject");
          if (!kinds.has("topic")) expect(actions, fn.id).not.toContain("sns:Publish");
          // A stream consumer may send to its on-failure queue, and only there.
          const sends = new Set(
            statementsOf(fn)
              .filter((statement) => [statement.Action].flat().includes("sqs:SendMessage"))
              .flatMap((statement) => [statement.Resource].flat().map((r: Json) => render(templateOf(fn.owner), r))),
          );
          const mayReach = refs.flatMap((r) => (r.kind === "queue" ? [find.queue(r.id).name] : []));
          if (fn.source.kind === "kinesis") mayReach.push(find.queue(fn.source.onFailureQueueId).name);
          for (const reached of sends)
            expect(
              mayReach.some((q) => reached.endsWith(q)),
              `${fn.id} → ${reached}`,
            ).toBe(true);
          expect(actions, fn.id).not.toContain("lambda:InvokeFunction");
        }
      });

      it("maps every function to its planned event source", () => {
        for (const fn of plan.functions) {
          const template = templateOf(fn.owner);
          const [fnId, resource] = functionOf(fn);
          const mappings = resources(template, "AWS::Lambda::EventSourceMapping").filter(
            ([, m]) => target(m.Properties.FunctionName) === fnId,
          );
          const source = fn.source;
          if (source.kind === "job") {
            expect(mappings, fn.id).toHaveLength(0); // started by its warm-up state machine
            continue;
          }
          if (source.kind === "http") {
            expect(mappings).toHaveLength(0);
            one(
              resources(template, "AWS::ApiGatewayV2::Integration").filter(
                ([, i]) => target(i.Properties.IntegrationUri) === fnId,
              ),
              `integration of ${fn.id}`,
            );
            const routes = resources(template, "AWS::ApiGatewayV2::Route");
            expect(routes.length).toBeGreaterThan(0);
            for (const [, route] of routes) expect(route.Properties.AuthorizationType).toBe("JWT");
            continue;
          }
          const [, mapping] = one(mappings, `event source mapping of ${fn.id}`);
          expect(mapping.Properties).toMatchObject({
            BatchSize: source.batchSize,
            FunctionResponseTypes: ["ReportBatchItemFailures"],
          });
          if (source.kind === "sqs") {
            // A warming-up projection's mapping is created disabled: its queue buffers (law I).
            expect(mapping.Properties.Enabled ?? true, fn.id).toBe(fn.startsDetached !== true);
            expect(mapping.Properties.ScalingConfig, fn.id).toEqual({ MaximumConcurrency: source.maxConcurrency });
            const queue = find.queue(source.queueId);
            expect(render(template, mapping.Properties.EventSourceArn)).toBe(queue.name);
            // SQS would hand a message still being handled to another instance.
            const [, queueResource] = named(template, "AWS::SQS::Queue", "QueueName", queue.name);
            expect(resource.Properties.Timeout).toBeLessThanOrEqual(queueResource.Properties.VisibilityTimeout);
          } else {
            const consumers = resources(template, "AWS::Kinesis::StreamConsumer");
            const read = target(mapping.Properties.EventSourceArn);
            if (source.readsBy === "enhanced-fan-out") {
              // Through its own registered consumer of the planned stream, and only the relay reads by it.
              const [consumerId, consumer] = one(
                consumers.filter(([id]) => id === read),
                `stream consumer of ${fn.id}`,
              );
              expect(mapping.Properties.EventSourceArn).toEqual({ "Fn::GetAtt": [consumerId, "ConsumerARN"] });
              expect(consumer.Properties.ConsumerName).toBe(source.consumerName);
              expect(render(template, consumer.Properties.StreamARN)).toBe(find.stream(source.bus).name);
              const onConsumer = statementsOf(fn).filter((s) =>
                [s.Resource].flat().some((r) => target(r) === consumerId),
              );
              expect(new Set(onConsumer.flatMap((s) => [s.Action].flat())), fn.id).toEqual(
                new Set(["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"]),
              );
              expect(fn.role, fn.id).toBe("relay");
            } else {
              expect(render(template, mapping.Properties.EventSourceArn)).toBe(find.stream(source.bus).name);
              expect(source.consumerName, fn.id).toBeUndefined();
            }
            expect(mapping.Properties).toMatchObject({
              StartingPosition: source.startingPosition,
              BisectBatchOnFunctionError: source.bisectBatchOnError,
              MaximumRetryAttempts: source.maxRetryAttempts,
            });
            expect(mapping.Properties.ParallelizationFactor ?? 1, fn.id).toBe(source.parallelizationFactor);
            // The local runner reads maxRetryAttempts too; the record age is AWS's only.
            expect(mapping.Properties.MaximumRecordAgeInSeconds ?? -1, fn.id).toBe(source.maxRecordAgeSeconds);
            expect(mapping.Properties.MaximumBatchingWindowInSeconds ?? 0).toBe(source.batchWindowSeconds);
            expect(render(template, mapping.Properties.DestinationConfig.OnFailure.Destination)).toBe(
              find.queue(source.onFailureQueueId).name,
            );
          }
        }
      });

      it("creates nothing the plan does not declare", () => {
        const names = (type: string, property: string) =>
          allResources(type)
            .map(([, r]) => r.Properties[property])
            .sort();
        expect(names("AWS::SQS::Queue", "QueueName")).toEqual(
          plan.queues.flatMap((q) => [q.name, q.deadLetterQueueName]).sort(),
        );
        expect(names("AWS::DynamoDB::Table", "TableName")).toEqual(plan.tables.map((t) => t.name).sort());
        expect(names("AWS::Kinesis::Stream", "Name")).toEqual(plan.streams.map((s) => s.name).sort());
        // A stream consumer only for a mapping planned to read by enhanced fan-out.
        expect(names("AWS::Kinesis::StreamConsumer", "ConsumerName")).toEqual(
          plan.functions
            .flatMap((fn) =>
              fn.source.kind === "kinesis" && fn.source.readsBy === "enhanced-fan-out" ? [fn.source.consumerName] : [],
            )
            .sort(),
        );
        // Besides the buses' topics, the app's alarm topic (infra only: the local cloud raises no alarms).
        expect(names("AWS::SNS::Topic", "TopicName")).toEqual(
          [...plan.topics.map((t) => t.name), alarmTopicName(plan.prefix)].sort(),
        );
        // Per bus, its archive and the Athena results bucket (which has no fixed name).
        const buckets = [...templates.values()].flatMap((template) =>
          resources(template, "AWS::S3::Bucket").map(([, b]) =>
            b.Properties.BucketName === undefined ? "(results)" : render(template, b.Properties.BucketName),
          ),
        );
        // And per telemetry bus, its Parquet files' bucket (Athena's results go in it too).
        expect(buckets.sort()).toEqual(
          [
            ...plan.buckets.map((b) => awsBucketName(b.name)),
            ...plan.buckets.map(() => "(results)"),
            ...plan.telemetry.map((t) => awsBucketName(t.bucket)),
          ].sort(),
        );
        expect(names("AWS::KinesisFirehose::DeliveryStream", "DeliveryStreamName")).toEqual(
          plan.telemetry.map((t) => t.deliveryStream).sort(),
        );
        expect(allResources("AWS::SNS::Subscription")).toHaveLength(plan.subscriptions.length);

        const functions = allResources("AWS::Lambda::Function");
        const helpers = functions.filter(([id]) => cdkHelperFunction.test(id));
        const ours = functions.filter(([id]) => !cdkHelperFunction.test(id)).map(([, fn]) => tag(fn, "canon:function"));
        expect(ours.sort()).toEqual(plan.functions.map((fn) => fn.id).sort());
        expect(helpers).toEqual([]); // none today; relax this when a construct brings one

        const mapped = plan.functions.filter((fn) => fn.source.kind !== "http" && fn.source.kind !== "job");
        expect(allResources("AWS::Lambda::EventSourceMapping")).toHaveLength(mapped.length);
      });

      it("shares no CloudFormation exports: stacks find each other by name", () => {
        for (const template of templates.values()) {
          for (const output of Object.values<Json>(template.Outputs ?? {})) expect(output.Export).toBeUndefined();
          expect(JSON.stringify(template)).not.toContain("Fn::ImportValue");
        }
      });
    });

    describe("each service stack synthesizes alone", () => {
      for (const service of plannedServices(plan)) {
        it(`${stackNames.service(plan.prefix, service)}, with no other stack in its app`, () => {
          const app = testApp();
          applyCanonChecks(app, plan);
          const stack = new ServiceStack(app, stackNames.service(plan.prefix, service), { plan, service });
          const template = Template.fromStack(stack).toJSON();
          expect(app.node.children.filter(Stack.isStack)).toEqual([stack]);
          expect(stack.dependencies).toEqual([]);
          expect(JSON.stringify(template)).not.toContain("Fn::ImportValue");
          const owned = plan.queues.filter((q) => q.owner.kind === "service" && q.owner.name === service);
          expect(resources(template, "AWS::SQS::Queue")).toHaveLength(owned.length * 2);
        });
      }
    });
  });
}
