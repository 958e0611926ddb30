/**
 * The resources of a plan, as constructs in one stack. A stack creates what its owner
 * owns; anything else its functions refer to is imported by its deterministic physical
 * name (tables, queues, the queue key's alias) or by the bus's SSM parameters (stream,
 * topic), never through another stack's constructs, so no stack needs another one to
 * synthesize, deploy or be destroyed.
 */
import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as kinesis from "aws-cdk-lib/aws-kinesis";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import * as ssm from "aws-cdk-lib/aws-ssm";
import type { Construct } from "constructs";
import type { AppPlan, Owner, PlannedQueue, PlannedTable } from "../shared/plan.ts";
import { archiveKeyAlias, busParameters, ownerTag, pascal, queueKeyAlias, sameOwner } from "./names.ts";

export interface OwnedResourceOptions {
  /**
   * What happens to the owner's tables (and the API's user pool) when its stack is
   * deleted. The tables can be rebuilt from the archive (law G), but a retained table is
   * the cheaper insurance; a retained table is also deletion-protected.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** A queue the stack created, with its dead-letter queue. */
export interface OwnedQueue {
  readonly planned: PlannedQueue;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
}

export class PlanResources {
  readonly plan: AppPlan;
  private readonly scope: Construct;
  private readonly tables = new Map<string, dynamodb.ITable>();
  private readonly queues = new Map<string, sqs.IQueue>();
  private readonly owned = new Map<string, OwnedQueue>();
  private readonly streams = new Map<string, kinesis.IStream>();
  private readonly topics = new Map<string, sns.ITopic>();
  private readonly buckets = new Map<string, s3.IBucket>();
  private readonly bucketKeys = new Map<string, kms.IKey | kms.IAlias>();
  private readonly aliases = new Map<string, kms.IAlias>();
  private ownKey: kms.Key | undefined;

  constructor(scope: Construct, plan: AppPlan) {
    this.scope = scope;
    this.plan = plan;
  }

  /**
   * Creates every queue (with its dead-letter queue, both encrypted with one customer managed
   * KMS key, since SNS can only deliver to a queue whose key policy lets it) and every table
   * the owner owns.
   */
  addOwned(owner: Owner, options: OwnedResourceOptions = {}): void {
    const queues = this.plan.queues.filter((queue) => sameOwner(queue.owner, owner));
    if (queues.length > 0) {
      this.ownKey = new kms.Key(this.scope, "QueueKey", {
        alias: queueKeyAlias(this.plan.prefix, owner),
        description: `Canon ${this.plan.prefix} ${ownerTag(owner)}: encrypts its queues and dead-letter queues`,
        enableKeyRotation: true,
        // The queues go with the stack; so does their key, after the shortest waiting period.
        removalPolicy: RemovalPolicy.DESTROY,
        pendingWindow: Duration.days(7),
      });
    }
    for (const planned of queues) {
      const created = createQueue(this.scope, planned, this.ownKey as kms.Key);
      this.owned.set(planned.id, created);
      this.queues.set(planned.id, created.queue);
    }
    const removalPolicy = options.removalPolicy ?? RemovalPolicy.RETAIN;
    for (const table of this.plan.tables) {
      if (sameOwner(table.owner, owner)) this.tables.set(table.id, createTable(this.scope, table, removalPolicy));
    }
  }

  /** Registers a bus's stream, topic and archive (a telemetry bus has neither), created by the bus stack itself. */
  addBus(
    bus: string,
    stream: kinesis.IStream,
    topic?: sns.ITopic,
    archive?: { readonly bucket: s3.IBucket; readonly key: kms.IKey },
  ): void {
    this.streams.set(bus, stream);
    if (topic) this.topics.set(bus, topic);
    if (archive) {
      this.buckets.set(bus, archive.bucket);
      this.bucketKeys.set(bus, archive.key);
    }
  }

  /** The queues this stack created, in plan order. */
  ownedQueues(): OwnedQueue[] {
    return [...this.owned.values()];
  }

  /** A queue this stack created, or undefined if another stack owns it. */
  ownedQueue(id: string): OwnedQueue | undefined {
    return this.owned.get(id);
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

  /**
   * The key of a queue: the key itself for a queue of this stack, else its owner's key alias,
   * imported by name (grants on it are scoped by `kms:ResourceAliases`).
   */
  queueKey(id: string): kms.IKey | kms.IAlias {
    if (this.owned.has(id) && this.ownKey) return this.ownKey;
    const owner = this.plannedQueue(id).owner;
    const alias = queueKeyAlias(this.plan.prefix, owner);
    return remember(this.aliases, alias, () => kms.Alias.fromAliasName(this.scope, `${pascal(alias)}Ref`, alias));
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

  /** A bus's archive bucket: its own in the bus stack, else found by name through the bus's SSM parameter. */
  bucket(bus: string): s3.IBucket {
    return remember(this.buckets, bus, () =>
      s3.Bucket.fromBucketName(
        this.scope,
        `${pascal(bus)}ArchiveBucketRef`,
        this.busParameter(busParameters.archiveBucket, bus),
      ),
    );
  }

  /** The key of a bus's archive: the key itself in the bus stack, else its alias, imported by name. */
  bucketKey(bus: string): kms.IKey | kms.IAlias {
    return remember(this.bucketKeys, bus, () => {
      const alias = archiveKeyAlias(this.plan.prefix, bus);
      return remember(this.aliases, alias, () => kms.Alias.fromAliasName(this.scope, `${pascal(alias)}Ref`, alias));
    });
  }

  /** Resolved by CloudFormation at deploy time: the bus stack must be deployed first. */
  private busParameter(name: (prefix: string, bus: string) => string, bus: string): string {
    return ssm.StringParameter.valueForStringParameter(this.scope, name(this.plan.prefix, bus));
  }
}

function createQueue(scope: Construct, planned: PlannedQueue, key: kms.IKey): OwnedQueue {
  const common = {
    fifo: planned.fifo,
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: key,
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
  const queue = new sqs.Queue(scope, `${pascal(planned.id)}Queue`, {
    ...common,
    queueName: planned.name,
    visibilityTimeout: Duration.seconds(planned.visibilityTimeoutSeconds),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: planned.maxReceiveCount },
  });
  return { planned, queue, deadLetterQueue };
}

function createTable(scope: Construct, planned: PlannedTable, removalPolicy: RemovalPolicy): dynamodb.Table {
  return new dynamodb.Table(scope, `${pascal(planned.id)}Table`, {
    tableName: planned.name,
    partitionKey: { name: planned.partitionKey, type: dynamodb.AttributeType.STRING },
    ...(planned.sortKey !== undefined && { sortKey: { name: planned.sortKey, type: dynamodb.AttributeType.STRING } }),
    ...(planned.timeToLiveAttribute !== undefined && { timeToLiveAttribute: planned.timeToLiveAttribute }),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
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
