/**
 * One bus: its Kinesis stream (the hot log), its SNS FIFO topic, its arbitration table
 * and the relay that moves commits from the stream to the topic. The stream and topic
 * ARNs are published as SSM parameters, the only way a service stack finds its bus.
 */
import { Duration, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import * as kinesis from "aws-cdk-lib/aws-kinesis";
import * as kms from "aws-cdk-lib/aws-kms";
import * as sns from "aws-cdk-lib/aws-sns";
import * as ssm from "aws-cdk-lib/aws-ssm";
import type { Construct } from "constructs";
import type { AppPlan, Owner } from "../shared/plan.ts";
import { addOwnedFunctions } from "./canon-function.ts";
import { busParameters } from "./names.ts";
import { type OwnedResourceOptions, PlanResources } from "./resources.ts";

export interface BusStackProps extends StackProps, OwnedResourceOptions {
  readonly plan: AppPlan;
  /** The bus's name in the plan. */
  readonly bus: string;
}

export class BusStack extends Stack {
  readonly stream: kinesis.Stream;
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: BusStackProps) {
    super(scope, id, props);
    const { plan, bus } = props;
    const owner: Owner = { kind: "bus", name: bus };
    const planned = plan.streams.find((stream) => stream.bus === bus);
    const plannedTopic = plan.topics.find((topic) => topic.bus === bus);
    if (!planned || !plannedTopic) throw new Error(`the plan has no bus "${bus}"`);

    this.stream = new kinesis.Stream(this, "Stream", {
      streamName: planned.name,
      streamMode: kinesis.StreamMode.PROVISIONED,
      shardCount: planned.shards,
      retentionPeriod: Duration.hours(planned.retentionHours),
      encryption: kinesis.StreamEncryption.MANAGED,
      removalPolicy: RemovalPolicy.RETAIN, // the event store's hot log: never deleted by a stack update
    });
    this.topic = new sns.Topic(this, "Topic", {
      topicName: plannedTopic.name,
      fifo: true,
      // Ordering and deduplication per message group (= aggregate id), at the high-throughput quota.
      fifoThroughputScope: sns.FifoThroughputScope.MESSAGE_GROUP,
      masterKey: kms.Alias.fromAliasName(this, "TopicKey", "alias/aws/sns"),
      enforceSSL: true,
    });

    new ssm.StringParameter(this, "StreamArnParameter", {
      parameterName: busParameters.streamArn(plan.prefix, bus),
      stringValue: this.stream.streamArn,
    });
    new ssm.StringParameter(this, "TopicArnParameter", {
      parameterName: busParameters.topicArn(plan.prefix, bus),
      stringValue: this.topic.topicArn,
    });

    const resources = new PlanResources(this, plan);
    resources.addBus(bus, this.stream, this.topic);
    resources.addOwned(owner, props);
    addOwnedFunctions(this, resources, owner);
  }
}
