/**
 * Derives every resource of an application from its declaration (shared/topology.ts).
 * Pure: no SDK, no CDK. The CDK stacks and the local cloud both consume this plan, and
 * a test holds the synthesized templates against it. One module per concern, in shared/plan/:
 * the model (model.ts), the buses (bus.ts), a service's command side (command-side.ts), its
 * projections (projections.ts) and reactors (reactors.ts), the API (api.ts), and the checks of
 * a declaration (validate.ts).
 */

import { planApi } from "./plan/api.ts";
import { planBuilder } from "./plan/builder.ts";
import { planArchivers, planBusResources, planJourneys, planRelays, planTelemetryAccess } from "./plan/bus.ts";
import { planCommandSide } from "./plan/command-side.ts";
import type { AppPlan, Owner } from "./plan/model.ts";
import { planProjections } from "./plan/projections.ts";
import { planReactors } from "./plan/reactors.ts";
import { validateApp } from "./plan/validate.ts";
import type { AppDefinition } from "./topology.ts";

export { isTelemetryBus } from "./plan/bus.ts";
export * from "./plan/model.ts";
export {
  findProjectionGeneration,
  type ProjectionGeneration,
  plannedProjectionNames,
  projectionGenerations,
} from "./plan/projections.ts";

/** Builds the full resource plan of an application. Throws on an inconsistent declaration. */
export function planApp(app: AppDefinition): AppPlan {
  validateApp(app);
  const b = planBuilder(app.prefix);
  const { streams, topics, buckets, telemetry } = planBusResources(b, app);
  // In this order: the templates and the local cloud list resources as they are planned.
  planRelays(b, app);
  planArchivers(b, app);
  planJourneys(b, app);
  for (const service of app.services) {
    const owner: Owner = { kind: "service", name: service.name };
    if (service.commandHandler !== undefined) planCommandSide(b, service, owner);
    planProjections(b, service, owner);
    planReactors(b, service, owner);
  }
  planApi(b, app);
  planTelemetryAccess(b, app);
  const { queues, tables, subscriptions, functions } = b;
  return { prefix: app.prefix, streams, topics, buckets, queues, tables, subscriptions, functions, telemetry };
}
