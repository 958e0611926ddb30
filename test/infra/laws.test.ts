/**
 * The laws fail synthesis. Each test builds the stack of a small fixture app (three services
 * on one bus), breaks one law the way a careless change would (a grant, a resource, a function),
 * and asserts that synthesis throws with a message naming the law. The unbroken fixture and
 * the example app pass.
 */
import { type App, Duration, type Stack } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kinesis from "aws-cdk-lib/aws-kinesis";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { describe, expect, it } from "vitest";
import { ApiStack } from "../../infra/api-stack.ts";
import { BusStack } from "../../infra/bus-stack.ts";
import { applyCanonChecks } from "../../infra/canon-app.ts";
import type { CanonFunction } from "../../infra/canon-function.ts";
import { laws } from "../../infra/laws.ts";
import { ServiceStack } from "../../infra/service-stack.ts";
import { planApp } from "../../shared/plan.ts";
import { enhancedFanOutApp } from "./fixtures/enhanced-fan-out.ts";
import { shopApp } from "./fixtures/shop.ts";
import { warmUpApp } from "./fixtures/warm-up.ts";
import { testApp } from "./support.ts";

const plan = planApp(shopApp);
/** The same shop with `orders.totals` warming up: a detached consumer and its replayer. */
const warmPlan = planApp(warmUpApp);

/** A fresh, checked app holding one service stack of the fixture. */
function serviceStack(service = "orders", fixture = plan): ServiceStack {
  const app = testApp();
  applyCanonChecks(app, fixture);
  return new ServiceStack(app, `Shop-Service-${service}`, { plan: fixture, service });
}

function apiStack(): ApiStack {
  const app = testApp();
  applyCanonChecks(app, plan);
  return new ApiStack(app, "Shop-Api", { plan, auth: { kind: "iam" } });
}

function busStack(): BusStack {
  const app = testApp();
  applyCanonChecks(app, plan);
  return new BusStack(app, "Shop-Bus-core", { plan, bus: "core" });
}

function fn(stack: ServiceStack | BusStack | ApiStack, id: string): lambda.Function {
  const found = stack.functions.get(id) as CanonFunction | undefined;
  if (!found) throw new Error(`no function ${id}`);
  return found.function;
}

/** Synthesizes the stack's app, returning the error it throws (or failing the test). */
function synthError(stack: Stack): string {
  try {
    (stack.node.root as App).synth();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`${stack.stackName} synthesized, breaking no law`);
}

describe("the fixture app, unbroken", () => {
  it("satisfies every law and cdk-nag", () => {
    for (const stack of [serviceStack("orders"), serviceStack("billing"), busStack(), apiStack()]) {
      expect(() => (stack.node.root as App).synth()).not.toThrow();
    }
  });

  it("passes with its relay reading by enhanced fan-out (a stream consumer)", () => {
    const fanOut = planApp(enhancedFanOutApp);
    const app = testApp();
    applyCanonChecks(app, fanOut);
    new BusStack(app, "Shop-Bus-core", { plan: fanOut, bus: "core" });
    expect(() => app.synth()).not.toThrow();
  });

  it("lets a service read its bus's archive and stream: a replayer, projections resolving claim checks", () => {
    const stack = serviceStack("orders", warmPlan);
    expect(() => (stack.node.root as App).synth()).not.toThrow();
  });
});

describe("Law F: fanout consumers publish nothing", () => {
  it("fails a projection allowed to publish to its bus's topic", () => {
    const stack = serviceStack();
    stack.resources.topic("core").grantPublish(fn(stack, "orders-summary"));
    expect(synthError(stack)).toMatch(
      /Law F \(.*\): orders-summary \(projection of service:orders\) may sns:Publish on topic shop-core\.fifo/,
    );
  });

  it("fails a projection allowed to write its bus's stream", () => {
    const stack = serviceStack();
    stack.resources.stream("core").grantWrite(fn(stack, "orders-summary"));
    expect(synthError(stack)).toMatch(/Law F .*may kinesis:PutRecord, kinesis:PutRecords on stream shop-core /);
  });

  it("fails a projection allowed to send to a queue, even its own service's", () => {
    const stack = serviceStack();
    stack.resources.queue("orders-commands").grantSendMessages(fn(stack, "orders-state"));
    expect(synthError(stack)).toMatch(/Law F .*orders-state .*may sqs:SendMessage on queue shop-orders-commands\.fifo/);
  });

  it("fails a projection allowed to write its bus's archive", () => {
    const stack = serviceStack();
    stack.resources.bucket("core").grantPut(fn(stack, "orders-summary"));
    expect(synthError(stack)).toMatch(
      /Law F \(.*\): orders-summary \(projection of service:orders\) may s3:PutObject on bucket shop-core-archive /,
    );
  });

  it("fails a replayer allowed to write the archive it replays, or to delete from it", () => {
    const stack = serviceStack("orders", warmPlan);
    stack.resources.bucket("core").grantDelete(fn(stack, "orders-totals-replayer"));
    expect(synthError(stack)).toMatch(
      /Law F .*orders-totals-replayer \(replayer of service:orders\) may s3:DeleteObject, s3:DeleteObjectVersion on bucket shop-core-archive /,
    );
  });

  it("fails a replayer allowed to write its bus's stream", () => {
    const stack = serviceStack("orders", warmPlan);
    stack.resources.stream("core").grantWrite(fn(stack, "orders-totals-replayer"));
    expect(synthError(stack)).toMatch(
      /Law F .*orders-totals-replayer .*may kinesis:PutRecord, kinesis:PutRecords on stream shop-core /,
    );
  });

  it("fails a wildcard statement that would let a projection publish anywhere", () => {
    const stack = serviceStack();
    fn(stack, "orders-summary").addToRolePolicy(new iam.PolicyStatement({ actions: ["sns:*"], resources: ["*"] }));
    expect(synthError(stack)).toMatch(/Law F .*may sns:Publish on every resource \(\*\)/);
  });
});

describe("Law B/C: a node touches only its own tables and queues", () => {
  it("fails a function allowed to read another service's table", () => {
    const stack = serviceStack();
    stack.resources.table("billing-summary").grantReadData(fn(stack, "orders-summary"));
    expect(synthError(stack)).toMatch(
      /Law B\/C .*: orders-summary .* may dynamodb:.* on table shop-billing-summary .*owned by service:billing/,
    );
  });

  it("fails a function allowed to send to another service's (non-command) queue", () => {
    const stack = serviceStack();
    stack.resources.queue("billing-summary").grant(fn(stack, "orders-command-handler"), "sqs:SendMessage");
    expect(synthError(stack)).toMatch(/Law B\/C .*orders-command-handler .*on queue shop-billing-summary\.fifo/);
  });

  it("fails a command handler sending commands to another service: only the API and declared reactors may", () => {
    const stack = serviceStack();
    stack.resources.queue("billing-commands").grant(fn(stack, "orders-command-handler"), "sqs:SendMessage");
    expect(synthError(stack)).toMatch(/Law B\/C .*orders-command-handler .*on queue shop-billing-commands\.fifo/);
  });

  it("fails a reactor sending commands to a service it does not declare", () => {
    const stack = serviceStack();
    stack.resources.queue("shipping-commands").grant(fn(stack, "orders-fulfil"), "sqs:SendMessage");
    expect(synthError(stack)).toMatch(
      /Law B\/C .*orders-fulfil \(reactor of service:orders\) .*shop-shipping-commands\.fifo/,
    );
  });

  it("fails the API reading a table that is not a query table (a service's state)", () => {
    const stack = apiStack();
    stack.resources.table("orders-state").grantReadData(fn(stack, "api"));
    expect(synthError(stack)).toMatch(/Law B\/C .*api \(api of api\) .*on table shop-orders-state /);
  });

  it("fails the API writing a service's view", () => {
    const stack = apiStack();
    stack.resources.table("orders-summary").grantWriteData(fn(stack, "api"));
    expect(synthError(stack)).toMatch(/Law B\/C .*api .*dynamodb:PutItem.* on table shop-orders-summary /);
  });

  it("fails a role carrying a managed policy it cannot check", () => {
    const stack = serviceStack();
    fn(stack, "orders-summary").role?.addManagedPolicy(
      iam.ManagedPolicy.fromAwsManagedPolicyName("AmazonSQSFullAccess"),
    );
    expect(synthError(stack)).toMatch(/Law B\/C .*managed policy arn:aws:iam::aws:policy\/AmazonSQSFullAccess/);
  });

  it("fails a function allowed to touch every table", () => {
    const stack = serviceStack();
    fn(stack, "orders-command-handler").addToRolePolicy(
      new iam.PolicyStatement({ actions: ["dynamodb:GetItem"], resources: ["*"] }),
    );
    expect(synthError(stack)).toMatch(/Law B\/C .*may dynamodb:GetItem on every resource \(\*\)/);
  });

  it("fails a command handler writing its bus's arbitration table (it may only read the verdicts)", () => {
    const stack = serviceStack();
    stack.resources.table("core-arbitration").grantReadWriteData(fn(stack, "orders-command-handler"));
    expect(synthError(stack)).toMatch(
      /Law B\/C .*orders-command-handler .*dynamodb:PutItem.*on table shop-core-arbitration .*owned by bus:core/,
    );
  });

  it("fails any other service function reading its bus's arbitration table", () => {
    const stack = serviceStack();
    stack.resources.table("core-arbitration").grantReadData(fn(stack, "orders-summary"));
    expect(synthError(stack)).toMatch(/Law B\/C .*orders-summary .*on table shop-core-arbitration .*owned by bus:core/);
  });

  it("fails a function reading a bucket the plan does not know", () => {
    const stack = serviceStack();
    s3.Bucket.fromBucketName(stack, "Elsewhere", "someone-elses-bucket").grantRead(fn(stack, "orders-command-handler"));
    expect(synthError(stack)).toMatch(
      /Law B\/C .*orders-command-handler .*on bucket someone-elses-bucket .*whose owner the plan does not know/,
    );
  });

  it("fails a table named by a wildcard ARN", () => {
    const stack = serviceStack();
    dynamodb.Table.fromTableArn(stack, "Any", "arn:aws:dynamodb:eu-west-1:111111111111:table/shop-*").grantReadData(
      fn(stack, "orders-summary"),
    );
    expect(synthError(stack)).toMatch(/Law B\/C .*on table shop-\* .*whose owner the plan does not know/);
  });

  it("fails a function in a stack that is not its owner's (law B)", () => {
    const stack = serviceStack("billing");
    const lonely = new lambda.Function(stack, "Lonely", {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: "index.handler",
      code: lambda.Code.fromInline("export const handler = async () => {};"),
    });
    const tags = (lonely.node.defaultChild as lambda.CfnFunction).tags;
    tags.setTag("canon:role", "projection");
    tags.setTag("canon:owner", "service:orders", 1000);
    expect(synthError(stack)).toMatch(
      /Law B \(.*\): a function of service:orders lives in the stack of service:billing/,
    );
  });
});

describe("Law D: a command handler never writes its read model", () => {
  it("fails a command handler allowed to write its service's state, which its state projection writes", () => {
    const stack = serviceStack();
    stack.resources.table("orders-state").grantWriteData(fn(stack, "orders-command-handler"));
    expect(synthError(stack)).toMatch(
      /Law D \(.*\): orders-command-handler \(command-handler of service:orders\) may dynamodb:BatchWriteItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem on table shop-orders-state .*a read model its projection writes/,
    );
  });

  it("fails one allowed to update a view of its service", () => {
    const stack = serviceStack();
    fn(stack, "orders-command-handler").addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["dynamodb:UpdateItem"],
        resources: [stack.resources.table("orders-summary").tableArn],
      }),
    );
    expect(synthError(stack)).toMatch(
      /Law D .*orders-command-handler .*may dynamodb:UpdateItem on table shop-orders-summary/,
    );
  });

  it("lets it write its outcomes table (the unbroken fixture does), and read its state", () => {
    const stack = serviceStack();
    stack.resources.table("orders-state").grantReadData(fn(stack, "orders-command-handler"));
    expect(() => (stack.node.root as App).synth()).not.toThrow();
  });
});

describe("Law C: no function invokes a function", () => {
  it("fails a function allowed to invoke another", () => {
    const stack = serviceStack();
    fn(stack, "orders-state").grantInvoke(fn(stack, "orders-fulfil"));
    expect(synthError(stack)).toMatch(
      /Law C \(.*\): orders-fulfil \(reactor of service:orders\) may lambda:InvokeFunction/,
    );
  });
});

describe("Law A: only a bus's relay publishes to its topic", () => {
  it("fails a reactor allowed to publish to the topic instead of appending to the stream", () => {
    const stack = serviceStack();
    stack.resources.topic("core").grantPublish(fn(stack, "orders-fulfil"));
    expect(synthError(stack)).toMatch(/Law A \(.*\): orders-fulfil .*may sns:Publish on topic shop-core\.fifo/);
  });
});

describe("Law DLQ: every queue, subscription and stream consumer has a dead-letter destination", () => {
  it("fails a queue without a dead-letter queue", () => {
    const stack = serviceStack();
    new sqs.Queue(stack, "Orphan", {
      queueName: "shop-orphan",
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: new kms.Key(stack, "OrphanKey", { enableKeyRotation: true }),
      enforceSSL: true,
    });
    expect(synthError(stack)).toMatch(/Law DLQ \(.*\): queue shop-orphan has no dead-letter queue/);
  });

  it("fails a subscription without a redrive policy", () => {
    const stack = serviceStack();
    const queue = stack.resources.queue("orders-summary");
    new sns.Subscription(stack, "Bare", {
      topic: stack.resources.topic("core"),
      endpoint: queue.queueArn,
      protocol: sns.SubscriptionProtocol.SQS,
    });
    expect(synthError(stack)).toMatch(/Law DLQ .*subscription .* has no redrive policy/);
  });

  it("fails a stream mapping without an on-failure destination", () => {
    const stack = busStack();
    new lambda.EventSourceMapping(stack, "Bare", {
      target: fn(stack, "core-relay"),
      eventSourceArn: stack.stream.streamArn,
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
    });
    expect(synthError(stack)).toMatch(
      /Law DLQ .*the mapping from arn:aws:kinesis:.*stream\/shop-core has no on-failure/,
    );
  });

  it("fails a mapping through an enhanced fan-out consumer without an on-failure destination", () => {
    const stack = busStack();
    const consumer = new kinesis.StreamConsumer(stack, "BareConsumer", {
      streamConsumerName: "shop-core-bare",
      stream: stack.stream,
    });
    new lambda.EventSourceMapping(stack, "BareFanOut", {
      target: fn(stack, "core-relay"),
      eventSourceArn: consumer.streamConsumerArn,
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
    });
    expect(synthError(stack)).toMatch(
      /Law DLQ .*the mapping from arn:aws:kinesis:.*stream\/shop-core\/consumer\/shop-core-bare:\* has no on-failure/,
    );
  });
});

describe("Law KMS: every store is encrypted with KMS", () => {
  it("fails a table without server-side encryption by KMS", () => {
    const stack = serviceStack();
    new dynamodb.Table(stack, "Plain", {
      tableName: "shop-plain",
      partitionKey: { name: "id", type: dynamodb.AttributeType.STRING },
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    });
    expect(synthError(stack)).toMatch(/Law KMS \(.*\): table shop-plain is not encrypted with KMS/);
  });

  it("fails a queue encrypted by SQS rather than KMS", () => {
    const stack = serviceStack();
    const dlq = new sqs.Queue(stack, "PlainDlq", { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true });
    new sqs.Queue(stack, "Plain", {
      queueName: "shop-plain",
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: dlq, maxReceiveCount: 3 },
      retentionPeriod: Duration.days(4),
    });
    expect(synthError(stack)).toMatch(/Law KMS .*queue shop-plain is not encrypted with KMS/);
  });

  it("fails a bucket encrypted by S3 rather than KMS", () => {
    const stack = busStack();
    new s3.Bucket(stack, "Plain", {
      bucketName: "shop-plain",
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    });
    expect(synthError(stack)).toMatch(/Law KMS .*bucket shop-plain is not encrypted with KMS/);
  });

  it("fails an unencrypted topic", () => {
    const stack = busStack();
    new sns.Topic(stack, "Plain", { topicName: "shop-plain", enforceSSL: true });
    expect(synthError(stack)).toMatch(/Law KMS .*topic shop-plain is not encrypted with KMS/);
  });
});

describe("Law ROLE: every function carries a canon:role tag", () => {
  it("fails a function without one", () => {
    const stack = serviceStack();
    new lambda.Function(stack, "Untagged", {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: "index.handler",
      code: lambda.Code.fromInline("export const handler = async () => {};"),
    });
    expect(synthError(stack)).toMatch(/Law ROLE \(.*\): found no tag/);
  });

  it("fails a role the design does not know", () => {
    const stack = serviceStack();
    (fn(stack, "orders-summary").node.defaultChild as lambda.CfnFunction).tags.setTag("canon:role", "helper", 1000);
    expect(synthError(stack)).toMatch(/Law ROLE .*found "helper"/);
  });
});

it("names every law it enforces", () => {
  expect(Object.values(laws).map((law) => law.split(" (")[0])).toEqual([
    "Law A",
    "Law B",
    "Law B/C",
    "Law C",
    "Law D",
    "Law F",
    "Law DLQ",
    "Law KMS",
    "Law ROLE",
  ]);
});
