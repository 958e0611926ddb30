/** The state projection's Lambda entry, built from a service's decider (shared/parts.ts). */
import { stateProjectionHandler } from "../handlers/aggregate-state.ts";
import type { DeciderPart } from "../parts.ts";
import { tracedProjection } from "../telemetry/subscriber-hops.ts";

export { findDecider } from "./find.ts";

/** The aggregate's state, folded from the bus with its decider's `evolve`, for its command handler. */
export function stateLambda(decider: DeciderPart, service?: string) {
  const handler = stateProjectionHandler(decider, { upcasters: decider.upcasters });
  // Named by its service in telemetry ("accounts.state"), as the other projections are.
  return tracedProjection(handler, service === undefined ? undefined : `${service}.state`);
}
