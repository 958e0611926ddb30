/**
 * A service's reactors in the plan (law E): each its FIFO queue subscribed to the bus, and the
 * right to send to the command queues of the services it declares (`sendsTo`), nothing more (law C).
 */
import type { ServiceDefinition } from "../topology.ts";
import type { PlanBuilder } from "./builder.ts";
import { envNames, ids, type Owner, type ResourceRef } from "./model.ts";
import { claimReader, partCode } from "./projections.ts";

/** Every reactor of a service. */
export function planReactors(b: PlanBuilder, service: ServiceDefinition, owner: Owner): void {
  for (const reactor of service.reactors) {
    const q = b.queue(ids.reactorQueue(service.name, reactor.name), owner, reactor.mapping);
    b.subscriptions.push({ bus: service.bus, queueId: q.id, eventTypes: reactor.events });
    const sends: Record<string, ResourceRef> = {};
    for (const target of reactor.sendsTo) {
      sends[envNames.commandQueueUrl(target)] = { kind: "queue", id: ids.commandQueue(target), access: "send" };
    }
    b.functions.push({
      id: `${service.name}-${reactor.name}`,
      role: "reactor",
      owner,
      ...partCode(service, "reactor", reactor),
      source: b.sqsSource(q.id, reactor.mapping),
      env: { [envNames.service]: { kind: "value", value: service.name }, ...sends, ...claimReader(service.bus) },
    });
  }
}
