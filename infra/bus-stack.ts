/**
 * One bus: its Kinesis stream (the hot log), its SNS FIFO topic, its arbitration table and
 * the relay that moves commits from the stream to the topic, with the relay's failure queue.
 * The stream and topic ARNs are published as SSM parameters, the only way a service stack
 * finds its bus. Its monitoring watches the relay's iterator age against the stream's
 * retention, the conflict rate and the failure queues; the archiver (a later addition) adds
 * its own iterator-age alarm the same way, with `monitoring.addStreamConsumer`.
 */
import { Duration, RemovalPolicy, Stack, type StackProps, Tags } from "aws-cdk-lib";
import * as kinesis from "aws-cdk-lib/aws-kinesis";
import * as sns from "aws-cdk-lib/aws-sns";
import * as ssm from "aws-cdk-lib/aws-ssm";
import type { Construct } from "constructs";
import type { AppPlan, Owner } from "../shared/plan.ts";
import { addOwnedFunctions, type CanonFunction } from "./canon-function.ts";
import { type Monitoring, type MonitoringOptions, monitoringFor } from "./monitoring.ts";
import { busParameters, localId, ownerSlug, ownerTag, tagKeys } from "./names.ts";
import { type OwnedResourceOptions, PlanResources } from "./resources.ts";

export interface BusStackProps extends StackProps, OwnedResourceOptions, MonitoringOptions {
  readonly plan: AppPlan;
  /** The bus's name in the plan. */
  readonly bus: string;
}

export class BusStack extends Stack {
  readonly stream: kinesis.Stream;
  readonly topic: sns.Topic;
  readonly retention: Duration;
  readonly resources: PlanResources;
  /** The bus's functions by plan id (today its relay). */
  readonly functions: ReadonlyMap<string, CanonFunction>;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: BusStackProps) {
    super(scope, id, props);
    const { plan, bus } = props;
    const owner: Owner = { kind: "bus", name: bus };
    const planned = plan.streams.find((stream) => stream.bus === bus);
    const plannedTopic = plan.topics.find((topic) => topic.bus === bus);
    if (!planned || !plannedTopic) throw new Error(`the plan has no bus "${bus}"`);
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
    this.topic = new sns.Topic(this, "Topic", {
      topicName: plannedTopic.name,
      fifo: true,
      // Ordering and deduplication per message group (= aggregate id), at the high-throughput quota.
      fifoThroughputScope: sns.FifoThroughputScope.MESSAGE_GROUP,
      enforceSSL: true,
    });
    // The AWS managed key, named on the resource only: its key policy already lets the account's
    // principals use it through SNS, so publishers need no KMS grant (a `masterKey` would add one).
    (this.topic.node.defaultChild as sns.CfnTopic).kmsMasterKeyId = "alias/aws/sns";

    new ssm.StringParameter(this, "StreamArnParameter", {
      parameterName: busParameters.streamArn(plan.prefix, bus),
      stringValue: this.stream.streamArn,
      description: `Canon ${plan.prefix}: the ${bus} bus's Kinesis stream`,
    });
    new ssm.StringParameter(this, "TopicArnParameter", {
      parameterName: busParameters.topicArn(plan.prefix, bus),
      stringValue: this.topic.topicArn,
      description: `Canon ${plan.prefix}: the ${bus} bus's SNS FIFO topic`,
    });

    this.resources = new PlanResources(this, plan);
    this.resources.addBus(bus, this.stream, this.topic);
    this.resources.addOwned(owner, props);
    this.functions = addOwnedFunctions(this, this.resources, owner);

    this.monitoring = monitoringFor(this, plan.prefix, ownerSlug(owner), props);
    for (const fn of this.functions.values()) {
      if (fn.planned.source.kind !== "kinesis") continue;
      const relay = fn.planned.role === "relay";
      // The relay is the bus's heartbeat: alarm within minutes. Any other stream consumer (the
      // archiver) alarms at a quarter of the retention, long before a record could expire unread.
      this.monitoring.addStreamConsumer(fn.planned.role, fn.function, {
        retention: this.retention,
        threshold: relay ? Duration.minutes(Math.min(5, planned.retentionHours * 15)) : undefined,
      });
      if (relay) this.monitoring.addConflictRate(bus, fn.logGroup, this.stream);
    }
    for (const { planned: queue, queue: resource, deadLetterQueue } of this.resources.ownedQueues()) {
      // The relay's failure queue is a dead-letter queue in all but name.
      this.monitoring.addDeadLetterQueue(localId(queue.id, owner), resource);
      this.monitoring.addDeadLetterQueue(`${localId(queue.id, owner)}-dlq`, deadLetterQueue);
    }
    this.monitoring.addFunctions(new Map([...this.functions].map(([fid, fn]) => [fid, fn.function])));
  }
}
