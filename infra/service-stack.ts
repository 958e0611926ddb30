/**
 * One service: its queues, tables and functions, and the subscriptions of its queues to
 * its bus's topic, filtered by event type. It finds the bus through SSM parameters and
 * other services' queues by physical name, so it synthesizes, deploys and is destroyed
 * alone.
 */
import { Stack, type StackProps } from "aws-cdk-lib";
import * as sns from "aws-cdk-lib/aws-sns";
import { SqsSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { Construct } from "constructs";
import type { AppPlan, Owner } from "../shared/plan.ts";
import { addOwnedFunctions } from "./canon-function.ts";
import { sameOwner } from "./names.ts";
import { type OwnedResourceOptions, PlanResources } from "./resources.ts";

export interface ServiceStackProps extends StackProps, OwnedResourceOptions {
  readonly plan: AppPlan;
  /** The service's name in the plan. */
  readonly service: string;
}

export class ServiceStack extends Stack {
  constructor(scope: Construct, id: string, props: ServiceStackProps) {
    super(scope, id, props);
    const { plan, service } = props;
    const owner: Owner = { kind: "service", name: service };
    if (!plan.functions.some((fn) => sameOwner(fn.owner, owner)))
      throw new Error(`the plan has no service "${service}"`);
    const resources = new PlanResources(this, plan);
    resources.addOwned(owner, props);

    for (const subscription of plan.subscriptions) {
      if (!sameOwner(resources.plannedQueue(subscription.queueId).owner, owner)) continue;
      // Raw delivery: the queue receives the relay's message body unchanged, with its attributes.
      resources.topic(subscription.bus).addSubscription(
        new SqsSubscription(resources.queue(subscription.queueId), {
          rawMessageDelivery: true,
          filterPolicy: { type: sns.SubscriptionFilter.stringFilter({ allowlist: [...subscription.eventTypes] }) },
        }),
      );
    }

    addOwnedFunctions(this, resources, owner);
  }
}
