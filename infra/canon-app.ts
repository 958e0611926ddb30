/**
 * Every stack of a plan: one per bus, one per service, one for the API. Stacks share no
 * CloudFormation exports; the only ordering is "a bus before its services", since a
 * service reads its bus's SSM parameters at deploy time.
 */
import { type App, type Environment, Tags } from "aws-cdk-lib";
import type { AppPlan, Owner } from "../shared/plan.ts";
import { ApiStack } from "./api-stack.ts";
import { BusStack } from "./bus-stack.ts";
import { sameOwner, stackNames } from "./names.ts";
import type { OwnedResourceOptions } from "./resources.ts";
import { ServiceStack } from "./service-stack.ts";

export interface CanonStacksProps extends OwnedResourceOptions {
  /** @default environment-agnostic (region and account resolved at deploy time) */
  readonly env?: Environment;
}

export interface CanonStacks {
  readonly buses: ReadonlyMap<string, BusStack>;
  readonly services: ReadonlyMap<string, ServiceStack>;
  readonly api: ApiStack;
}

/** The names of the services in a plan, in declaration order. */
export function plannedServices(plan: AppPlan): string[] {
  const names = plan.functions.flatMap((fn) => (fn.owner.kind === "service" ? [fn.owner.name] : []));
  return [...new Set(names)];
}

/** The buses whose stream or topic the owner's functions or subscriptions use. */
function busesUsedBy(plan: AppPlan, owner: Owner): Set<string> {
  const used = new Set<string>();
  for (const subscription of plan.subscriptions) {
    const queue = plan.queues.find((q) => q.id === subscription.queueId);
    if (queue && sameOwner(queue.owner, owner)) used.add(subscription.bus);
  }
  for (const fn of plan.functions) {
    if (!sameOwner(fn.owner, owner)) continue;
    for (const ref of Object.values(fn.env)) if (ref.kind === "stream" || ref.kind === "topic") used.add(ref.bus);
  }
  return used;
}

export function addCanonStacks(app: App, plan: AppPlan, props: CanonStacksProps = {}): CanonStacks {
  Tags.of(app).add("canon:app", plan.prefix);
  const buses = new Map<string, BusStack>();
  for (const { bus } of plan.streams) {
    buses.set(bus, new BusStack(app, stackNames.bus(plan.prefix, bus), { ...props, plan, bus }));
  }
  const services = new Map<string, ServiceStack>();
  for (const service of plannedServices(plan)) {
    const stack = new ServiceStack(app, stackNames.service(plan.prefix, service), { ...props, plan, service });
    // Deploy order only, not a reference: the service resolves its bus's SSM parameters.
    for (const bus of busesUsedBy(plan, { kind: "service", name: service })) {
      const busStack = buses.get(bus);
      if (busStack) stack.addStackDependency(busStack, "reads the bus's SSM parameters");
    }
    services.set(service, stack);
  }
  const api = new ApiStack(app, stackNames.api(plan.prefix), { ...props, plan });
  return { buses, services, api };
}
