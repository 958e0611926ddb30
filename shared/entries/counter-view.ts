/** A declared counter view's consumer (shared/parts.ts, `counters`). */
import { counterProjection } from "../handlers/counters.ts";
import { type ProjectionDefinition, type ProjectionHandler, projectionHandler } from "../handlers/projection.ts";
import type { CounterView } from "../parts.ts";
import { tracedProjection } from "../telemetry/subscriber-hops.ts";

export { findProjection } from "./find.ts";

/** The runtime definition of a declared counter view of `service` (named `<service>.<name>`). */
export function counterViewDefinition(service: string, part: CounterView): ProjectionDefinition {
  return counterProjection({
    ...part.counters,
    name: `${service}.${part.name}`,
    events: part.events,
    upcasters: part.upcasters,
  });
}

/** The view's consumer: its queue → its own table, recording what it applied (shared/telemetry). */
export function counterViewLambda(service: string, part: CounterView): ProjectionHandler {
  return tracedProjection(projectionHandler(counterViewDefinition(service, part)));
}
