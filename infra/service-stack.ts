/**
 * One service: its queues, tables and functions, and the subscriptions of its queues to its
 * bus's topic, filtered by event type. It finds the bus through SSM parameters and other
 * services' queues by physical name (their key by alias), so it synthesizes, deploys and is
 * destroyed alone. A projection declared with `warmUp` gets its warm-up job (infra/warm-up.ts).
 * Its monitoring watches every queue's lag and dead letters.
 */
import { Stack, type StackProps, Tags } from "aws-cdk-lib";
import * as sns from "aws-cdk-lib/aws-sns";
import { SqsSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { Construct } from "constructs";
import { type AppPlan, envNames, type Owner } from "../shared/plan.ts";
import { addOwnedFunctions, type CanonFunction } from "./canon-function.ts";
import { type Monitoring, type MonitoringOptions, monitoringFor } from "./monitoring.ts";
import { localId, ownerSlug, ownerTag, pascal, sameOwner, tagKeys } from "./names.ts";
import { type OwnedResourceOptions, PlanResources } from "./resources.ts";
import { WarmUp, warmUpName } from "./warm-up.ts";

export interface ServiceStackProps extends StackProps, OwnedResourceOptions, MonitoringOptions {
  readonly plan: AppPlan;
  /** The service's name in the plan. */
  readonly service: string;
}

export class ServiceStack extends Stack {
  readonly resources: PlanResources;
  /** The service's functions by plan id. */
  readonly functions: ReadonlyMap<string, CanonFunction>;
  /** The warm-up jobs, by the plan id of the projection they attach. */
  readonly warmUps: ReadonlyMap<string, WarmUp>;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: ServiceStackProps) {
    super(scope, id, props);
    const { plan, service } = props;
    const owner: Owner = { kind: "service", name: service };
    if (!plan.functions.some((fn) => sameOwner(fn.owner, owner)))
      throw new Error(`the plan has no service "${service}"`);
    Tags.of(this).add(tagKeys.owner, ownerTag(owner));
    this.resources = new PlanResources(this, plan);
    this.resources.addOwned(owner, props);

    const subscriptions = new Map<string, sns.Subscription>();
    for (const subscription of plan.subscriptions) {
      const owned = this.resources.ownedQueue(subscription.queueId);
      if (!owned) continue;
      // Raw delivery: the queue receives the relay's message body unchanged, with its attributes.
      // What SNS cannot deliver lands in the queue's own dead-letter queue, next to what failed there.
      const created = this.resources.topic(subscription.bus).addSubscription(
        new SqsSubscription(owned.queue, {
          rawMessageDelivery: true,
          filterPolicy: { type: sns.SubscriptionFilter.stringFilter({ allowlist: [...subscription.eventTypes] }) },
          deadLetterQueue: owned.deadLetterQueue,
        }),
      );
      subscriptions.set(subscription.queueId, created);
    }

    this.functions = addOwnedFunctions(this, this.resources, owner);

    const warmUps = new Map<string, WarmUp>();
    for (const replayer of this.functions.values()) {
      if (replayer.planned.role !== "replayer") continue;
      const ref = replayer.planned.env[envNames.consumerFunction];
      const consumer = ref?.kind === "value" ? this.functions.get(ref.value) : undefined;
      if (consumer === undefined) throw new Error(`${replayer.planned.id}: no consumer function in this stack`);
      const source = consumer.planned.source;
      const subscription = source.kind === "sqs" ? subscriptions.get(source.queueId) : undefined;
      warmUps.set(
        consumer.planned.id,
        new WarmUp(this, `${pascal(consumer.planned.id)}WarmUp`, {
          replayer,
          consumer,
          stateMachineName: warmUpName(plan.prefix, consumer.planned.id),
          after: subscription ? [subscription] : [],
        }),
      );
    }
    this.warmUps = warmUps;

    this.monitoring = monitoringFor(this, plan.prefix, ownerSlug(owner), props);
    for (const { planned, queue, deadLetterQueue } of this.resources.ownedQueues()) {
      this.monitoring.addQueueLag(localId(planned.id, owner), queue);
      this.monitoring.addDeadLetterQueue(localId(planned.id, owner), deadLetterQueue);
    }
    this.monitoring.addFunctions(new Map([...this.functions].map(([fid, fn]) => [fid, fn.function])));
  }
}
