/** A declared counter view's consumer (shared/parts.ts, `counters`). */
import { counterProjection } from "../handlers/counters.ts";
import { type ProjectionDefinition, type ProjectionHandler, projectionHandler } from "../handlers/projection.ts";
import type { CounterView } from "../parts.ts";

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

/** The view's consumer: its queue → its own table. */
export function counterViewLambda(service: string, part: CounterView): ProjectionHandler {
  return projectionHandler(counterViewDefinition(service, part));
}
