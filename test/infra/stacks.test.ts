/**
 * Each stack of the example app, as a specification of what `cdk deploy` puts on AWS: event
 * source mappings, filter policies, FIFO settings, keys, IAM, alarms and the API's auth, then
 * a snapshot of every template, cdk-nag's verdict, and the stacks' independence.
 */
import type { Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { app as definition } from "../../functions/app.ts";
import { addCanonStacks } from "../../infra/canon-app.ts";
import { queueKeyAlias, stackNames } from "../../infra/names.ts";
import { ids } from "../../shared/plan.ts";
import { type Json, normalized, one, resources, synthesize, target, testApp } from "./support.ts";

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

  it("relays from the stream with bisection, retries until expiry and an on-failure queue", () => {
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
      MaximumRetryAttempts: -1,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [failuresId, "Arn"] } } },
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

  it("alarms on the relay's iterator age well before the stream's retention, on dead letters and on conflicts", () => {
    const bus = template(core);
    const retentionMs = 24 * 3600 * 1000;
    const iteratorAge = bus.findResources("AWS::CloudWatch::Alarm", {
      Properties: { MetricName: "IteratorAge", Namespace: "AWS/Lambda" },
    });
    const [alarm] = Object.values(iteratorAge) as Json[];
    expect(alarm.Properties.Threshold).toBeLessThanOrEqual(retentionMs / 4);
    bus.resourcePropertiesCountIs(
      "AWS::CloudWatch::Alarm",
      { MetricName: "ApproximateNumberOfMessagesVisible", Threshold: 1 },
      2,
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

  it("exists for the analytics bus too, with its own stream and topic (law K)", () => {
    const analytics = template(stacks.buses.get("analytics") as Stack);
    analytics.hasResourceProperties("AWS::Kinesis::Stream", { Name: "canon-analytics", ShardCount: 1 });
    analytics.hasResourceProperties("AWS::SNS::Topic", { TopicName: "canon-analytics.fifo" });
    analytics.hasResourceProperties("AWS::SSM::Parameter", { Name: "/canon/canon/bus/analytics/stream-arn" });
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
    for (const write of ["sns:Publish", "kinesis:PutRecord", "kinesis:PutRecords", "sqs:SendMessage"]) {
      expect(actions).not.toContain(write);
    }
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

  it("notifies an alarm topic when one is given", () => {
    const arn = "arn:aws:sns:eu-west-1:111111111111:ops";
    const bus = addCanonStacks(testApp(), plan, { alarmTopicArn: arn }).buses.get("core") as Stack;
    Template.fromStack(bus).allResourcesProperties("AWS::CloudWatch::Alarm", {
      AlarmActions: [arn],
      OKActions: [arn],
    });
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
          acknowledged.set(id.replace(/^annotation::/i, ""), reason);
        }
      }
      for (const child of node.node.children) visit(child);
    };
    visit(app);
    expect([...acknowledged.keys()].sort()).toEqual([
      "AwsSolutions-COG8",
      "AwsSolutions-IAM5[Resource::*]",
      "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]",
    ]);
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
  });

  it("order each service after its bus, and nothing else", () => {
    for (const [name, stack] of stacks.services) {
      expect(
        stack.dependencies.map((d) => d.stackName),
        name,
      ).toEqual([stackNames.bus("canon", "core")]);
    }
  });

  it("synthesize offline: environment-agnostic, with no context lookup left to make", () => {
    for (const stack of all) expect(stack.environment).toBe("aws://unknown-account/unknown-region");
    expect(app.synth().manifest.missing ?? []).toEqual([]);
  });
});
