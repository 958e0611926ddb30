/**
 * One bus: its Kinesis stream (the hot log), its SNS FIFO topic, its S3 archive (the permanent
 * log, infra/archive.ts) with its Glue catalog and Athena workgroup (infra/archive-catalog.ts),
 * its arbitration table, the relay that moves commits from the stream to the topic and the
 * archiver that moves them to the archive, each with its failure queue. The stream and topic
 * ARNs and the archive's name are published as SSM parameters, the only way a service stack
 * finds its bus. Its monitoring watches the relay's and the archiver's iterator age against
 * the stream's retention, the conflict rate and the failure queues.
 *
 * A telemetry bus (law K) has its stream, and instead of the rest its telemetry store
 * (infra/telemetry-store.ts: Firehose to Parquet files, Glue, Athena), its journeys table and the
 * journey indexer; its stream's ARN is its only SSM parameter.
 */
import { Duration, RemovalPolicy, Stack, type StackProps, Tags } from "aws-cdk-lib";
import * as kinesis from "aws-cdk-lib/aws-kinesis";
import * as sns from "aws-cdk-lib/aws-sns";
import * as ssm from "aws-cdk-lib/aws-ssm";
import type { Construct } from "constructs";
import type { AppPlan, Owner } from "../shared/plan.ts";
import { Archive, type ArchiveOptions } from "./archive.ts";
import { ArchiveCatalog, shardIdsFor } from "./archive-catalog.ts";
import { addOwnedFunctions, type CanonFunction } from "./canon-function.ts";
import { type Monitoring, type MonitoringOptions, monitoringFor } from "./monitoring.ts";
import { busParameters, localId, ownerSlug, ownerTag, tagKeys } from "./names.ts";
import { type OwnedResourceOptions, PlanResources } from "./resources.ts";
import { TelemetryStore } from "./telemetry-store.ts";

export interface BusStackProps extends StackProps, OwnedResourceOptions, MonitoringOptions {
  readonly plan: AppPlan;
  /** The bus's name in the plan. */
  readonly bus: string;
  /** Object Lock and replication of the archive. @default neither */
  readonly archive?: ArchiveOptions;
  /** The first day the archive's SQL table projects (yyyy-MM-dd). @default "2026-01-01" */
  readonly archiveSince?: string;
  /** How many shard ids (from shardId-000000000000) the archive's SQL table projects. @default see `shardIdsFor` */
  readonly archiveShardIds?: number;
}

export class BusStack extends Stack {
  readonly stream: kinesis.Stream;
  /** An events bus's topic, archive and catalog; none on a telemetry bus. */
  readonly topic?: sns.Topic;
  readonly retention: Duration;
  readonly archive?: Archive;
  readonly catalog?: ArchiveCatalog;
  /** A telemetry bus's delivery stream, Parquet files and Athena view. */
  readonly telemetry?: TelemetryStore;
  readonly resources: PlanResources;
  /** The bus's functions by plan id: its relay and its archiver. */
  readonly functions: ReadonlyMap<string, CanonFunction>;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: BusStackProps) {
    super(scope, id, props);
    const { plan, bus } = props;
    const owner: Owner = { kind: "bus", name: bus };
    const planned = plan.streams.find((stream) => stream.bus === bus);
    const plannedTopic = plan.topics.find((topic) => topic.bus === bus);
    const plannedBucket = plan.buckets.find((bucket) => bucket.bus === bus);
    const plannedStore = plan.telemetry.find((store) => store.bus === bus);
    if (!planned || ((!plannedTopic || !plannedBucket) && !plannedStore))
      throw new Error(`the plan has no bus "${bus}"`);
    Tags.of(this).add(tagKeys.owner, ownerTag(owner));

    this.retention = Duration.hours(planned.retentionHours);
    this.stream = new kinesis.Stream(this, "Stream", {
      streamName: planned.name,
      streamMode: kinesis.StreamMode.PROVISIONED,
      shardCount: planned.shards,
      retentionPeriod: this.retention,
      encryption: kinesis.StreamEncryption.MANAGED,
      removalPolicy: RemovalPolicy.RETAIN, // the event store's hot log: never deleted by a stack update
    });
    // In the order the events bus always had: its template's resources keep their places.
    if (plannedTopic) this.topic = this.addTopic(plannedTopic.name);
    new ssm.StringParameter(this, "StreamArnParameter", {
      parameterName: busParameters.streamArn(plan.prefix, bus),
      stringValue: this.stream.streamArn,
      description: `Canon ${plan.prefix}: the ${bus} bus's Kinesis stream`,
    });
    if (this.topic) {
      new ssm.StringParameter(this, "TopicArnParameter", {
        parameterName: busParameters.topicArn(plan.prefix, bus),
        stringValue: this.topic.topicArn,
        description: `Canon ${plan.prefix}: the ${bus} bus's SNS FIFO topic`,
      });
    }
    if (plannedBucket) {
      this.archive = new Archive(this, "Archive", {
        ...props.archive,
        prefix: plan.prefix,
        bus,
        localName: plannedBucket.name,
      });
      this.catalog = new ArchiveCatalog(this, "ArchiveCatalog", {
        prefix: plan.prefix,
        bus,
        bucket: this.archive.bucket,
        key: this.archive.key,
        shardIds: shardIdsFor(planned.shards, props.archiveShardIds),
        since: props.archiveSince,
      });
    }
    if (plannedStore) {
      this.telemetry = new TelemetryStore(this, "Telemetry", {
        prefix: plan.prefix,
        store: plannedStore,
        stream: this.stream,
        since: props.archiveSince,
      });
    }

    this.resources = new PlanResources(this, plan);
    this.resources.addBus(bus, this.stream, this.topic, this.archive);
    this.resources.addOwned(owner, props);
    this.functions = addOwnedFunctions(this, this.resources, owner);
    this.monitoring = this.monitor(props, planned.retentionHours);
  }

  /** An events bus's FIFO topic. */
  private addTopic(topicName: string): sns.Topic {
    const topic = new sns.Topic(this, "Topic", {
      topicName,
      fifo: true,
      // Ordering and deduplication per message group (= aggregate id), at the high-throughput quota.
      fifoThroughputScope: sns.FifoThroughputScope.MESSAGE_GROUP,
      enforceSSL: true,
    });
    // The AWS managed key, named on the resource only: its key policy already lets the account's
    // principals use it through SNS, so publishers need no KMS grant (a `masterKey` would add one).
    (topic.node.defaultChild as sns.CfnTopic).kmsMasterKeyId = "alias/aws/sns";
    return topic;
  }

  /** Alarms on the bus's stream consumers, the relay's conflict rate, the failure queues and the functions. */
  private monitor(props: BusStackProps, retentionHours: number): Monitoring {
    const { plan, bus } = props;
    const owner: Owner = { kind: "bus", name: bus };
    const monitoring = monitoringFor(this, plan.prefix, ownerSlug(owner), props);
    const retention = Duration.hours(retentionHours);
    for (const fn of this.functions.values()) {
      if (fn.planned.source.kind !== "kinesis") continue;
      const relay = fn.planned.role === "relay";
      // The relay is the bus's heartbeat: alarm within minutes. The archiver (any other stream
      // consumer) alarms at half the retention: still hours before a record could expire
      // unarchived (invariant 4), without waking anyone for a batch window or a slow minute.
      monitoring.addStreamConsumer(fn.planned.role, fn.function, {
        retention,
        threshold: relay
          ? Duration.minutes(Math.min(5, retentionHours * 15))
          : Duration.millis(retention.toMilliseconds() / 2),
      });
      if (relay) monitoring.addConflictRate(bus, fn.logGroup, this.stream);
    }
    for (const { planned: queue, queue: resource, deadLetterQueue } of this.resources.ownedQueues()) {
      // The relay's, archiver's and journey indexer's failure queues are dead-letter queues in all but name.
      monitoring.addDeadLetterQueue(localId(queue.id, owner), resource);
      monitoring.addDeadLetterQueue(`${localId(queue.id, owner)}-dlq`, deadLetterQueue);
    }
    const store = plan.telemetry.find((t) => t.bus === bus);
    if (store) monitoring.addDeliveryFreshness("delivery", store.deliveryStream);
    monitoring.addFunctions(new Map([...this.functions].map(([fid, fn]) => [fid, fn.function])));
    return monitoring;
  }
}
