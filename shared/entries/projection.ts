/**
 * A declared projection's consumer, whichever its kind (shared/parts.ts): for the local runner,
 * tests and tools. A Lambda bundle imports only its kind's module (view.ts, counter-view.ts).
 */
import type { ProjectionDefinition, ProjectionHandler } from "../handlers/projection.ts";
import { isCounterView, type ProjectionPart } from "../parts.ts";
import { counterViewDefinition, counterViewLambda } from "./counter-view.ts";
import { viewDefinition, viewLambda } from "./view.ts";

export { findProjection } from "./find.ts";
export { replayLambda } from "./replay.ts";

/** The runtime definition of a declared projection of `service` (named `<service>.<name>`). */
export function projectionDefinition(service: string, part: ProjectionPart): ProjectionDefinition {
  return isCounterView(part) ? counterViewDefinition(service, part) : viewDefinition(service, part);
}

/** The projection's consumer: its queue → its own table. */
export function projectionLambda(service: string, part: ProjectionPart): ProjectionHandler {
  return isCounterView(part) ? counterViewLambda(service, part) : viewLambda(service, part);
}
