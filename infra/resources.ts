/**
 * The resources of a plan, as constructs in one stack. A stack creates what its owner
 * owns; anything else its functions refer to is imported by its deterministic physical
 * name (tables, queues) or by the bus's SSM parameters (stream, topic), never through
 * another stack's constructs, so no stack needs another one to synthesize or deploy.
 */
import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as kinesis from "aws-cdk-lib/aws-kinesis";
import * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import * as ssm from "aws-cdk-lib/aws-ssm";
import type { Construct } from "constructs";
import type { AppPlan, Owner, PlannedQueue, PlannedTable } from "../shared/plan.ts";
import { busParameters, pascal, sameOwner } from "./names.ts";

export interface OwnedResourceOptions {
  /**
   * What happens to the owner's tables when its stack is deleted. The tables can be
   * rebuilt from the archive (law G), but a retained table is the cheaper insurance.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

export class PlanResources {
  readonly plan: AppPlan;
  private readonly scope: Construct;
  private readonly tables = new Map<string, dynamodb.ITable>();
  private readonly queues = new Map<string, sqs.IQueue>();
  private readonly streams = new Map<string, kinesis.IStream>();
  private readonly topics = new Map<string, sns.ITopic>();

  constructor(scope: Construct, plan: AppPlan) {
    this.scope = scope;
    this.plan = plan;
  }

  /** Creates every queue (with its dead-letter queue) and table the owner owns. */
  addOwned(owner: Owner, options: OwnedResourceOptions = {}): void {
    for (const queue of this.plan.queues) {
      if (sameOwner(queue.owner, owner)) this.queues.set(queue.id, createQueue(this.scope, queue));
    }
    for (const table of this.plan.tables) {
      if (sameOwner(table.owner, owner)) {
        this.tables.set(table.id, createTable(this.scope, table, options.removalPolicy ?? RemovalPolicy.RETAIN));
      }
    }
  }

  /** Registers a bus's stream and topic, created by the bus stack itself. */
  addBus(bus: string, stream: kinesis.IStream, topic: sns.ITopic): void {
    this.streams.set(bus, stream);
    this.topics.set(bus, topic);
  }

  plannedQueue(id: string): PlannedQueue {
    return find(this.plan.queues, id, "queue");
  }

  table(id: string): dynamodb.ITable {
    return remember(this.tables, id, () =>
      dynamodb.Table.fromTableName(this.scope, `${pascal(id)}TableRef`, find(this.plan.tables, id, "table").name),
    );
  }

  queue(id: string): sqs.IQueue {
    return remember(this.queues, id, () => {
      const planned = this.plannedQueue(id);
      const stack = Stack.of(this.scope);
      return sqs.Queue.fromQueueAttributes(this.scope, `${pascal(id)}QueueRef`, {
        queueArn: stack.formatArn({ service: "sqs", resource: planned.name }),
        queueUrl: `https://sqs.${stack.region}.${stack.urlSuffix}/${stack.account}/${planned.name}`,
        fifo: planned.fifo,
      });
    });
  }

  stream(bus: string): kinesis.IStream {
    return remember(this.streams, bus, () =>
      kinesis.Stream.fromStreamArn(
        this.scope,
        `${pascal(bus)}BusStreamRef`,
        this.busParameter(busParameters.streamArn, bus),
      ),
    );
  }

  topic(bus: string): sns.ITopic {
    return remember(this.topics, bus, () =>
      sns.Topic.fromTopicArn(this.scope, `${pascal(bus)}BusTopicRef`, this.busParameter(busParameters.topicArn, bus)),
    );
  }

  /** Resolved by CloudFormation at deploy time: the bus stack must be deployed first. */
  private busParameter(name: (prefix: string, bus: string) => string, bus: string): string {
    return ssm.StringParameter.valueForStringParameter(this.scope, name(this.plan.prefix, bus));
  }
}

function createQueue(scope: Construct, planned: PlannedQueue): sqs.Queue {
  // SSE-SQS, not the AWS-managed KMS key: SNS cannot deliver to a queue encrypted with alias/aws/sqs.
  const common = {
    fifo: planned.fifo,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    // A warming-up projection's queue buffers until its replay has caught up (law I).
    retentionPeriod: Duration.days(14),
    // Deduplicate and throttle per message group (= aggregate id): high-throughput FIFO.
    ...(planned.fifo && {
      deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
    }),
  };
  const deadLetterQueue = new sqs.Queue(scope, `${pascal(planned.id)}DeadLetterQueue`, {
    ...common,
    queueName: planned.deadLetterQueueName,
  });
  return new sqs.Queue(scope, `${pascal(planned.id)}Queue`, {
    ...common,
    queueName: planned.name,
    visibilityTimeout: Duration.seconds(planned.visibilityTimeoutSeconds),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: planned.maxReceiveCount },
  });
}

function createTable(scope: Construct, planned: PlannedTable, removalPolicy: RemovalPolicy): dynamodb.Table {
  return new dynamodb.Table(scope, `${pascal(planned.id)}Table`, {
    tableName: planned.name,
    partitionKey: { name: planned.partitionKey, type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    removalPolicy,
  });
}

function find<T extends { readonly id: string }>(items: readonly T[], id: string, kind: string): T {
  const item = items.find((candidate) => candidate.id === id);
  if (!item) throw new Error(`the plan has no ${kind} "${id}"`);
  return item;
}

function remember<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let value = cache.get(key);
  if (value === undefined) {
    value = make();
    cache.set(key, value);
  }
  return value;
}
