/** A declared view's consumer, one item per aggregate (shared/parts.ts, `projection`). */
import {
  aggregateProjection,
  type ProjectionDefinition,
  type ProjectionHandler,
  projectionHandler,
} from "../handlers/projection.ts";
import type { AggregateView } from "../parts.ts";
import { tracedProjection } from "../telemetry/subscriber-hops.ts";

export { findProjection } from "./find.ts";

// biome-ignore lint/suspicious/noExplicitAny: any item and event type
type AnyView = AggregateView<any, any>;

/** The runtime definition of a declared view of `service` (named `<service>.<name>`). */
export function viewDefinition(service: string, part: AnyView): ProjectionDefinition {
  return aggregateProjection({
    name: `${service}.${part.name}`,
    events: part.events,
    upcasters: part.upcasters,
    parkAfterReceives: part.parkAfterReceives,
    key: part.itemKey,
    evolve: part.evolve,
    facts: part.facts,
    erase: part.erase,
  });
}

/** The view's consumer: its queue → its own table, recording what it applied (shared/telemetry). */
export function viewLambda(service: string, part: AnyView): ProjectionHandler {
  return tracedProjection(projectionHandler(viewDefinition(service, part)));
}
