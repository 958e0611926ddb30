/**
 * The API's part of the plan: its idempotency table, and its functions (the JSON API, and the
 * Connect and gRPC-Web routes), the only ones that send commands and read views (law C).
 */
import { partModule } from "../parts.ts";
import type { AppDefinition } from "../topology.ts";
import type { PlanBuilder } from "./builder.ts";
import { envNames, ids, type PlannedEntry, type ResourceRef, rpcRoute } from "./model.ts";
import { projectionGenerations } from "./projections.ts";

/** The API's table and functions. */
export function planApi(b: PlanBuilder, app: AppDefinition): void {
  const apiCommands = b.table(ids.apiCommandsTable(), { kind: "api" });
  const apiEnv: Record<string, ResourceRef> = {
    [envNames.apiCommandsTable]: { kind: "table", id: apiCommands.id, access: "readWrite" },
  };
  for (const service of app.services) {
    if (service.commandHandler !== undefined) {
      apiEnv[envNames.commandQueueUrl(service.name)] = {
        kind: "queue",
        id: ids.commandQueue(service.name),
        access: "send",
      };
      apiEnv[envNames.serviceOutcomesTable(service.name)] = {
        kind: "table",
        id: ids.outcomesTable(service.name),
        access: "read",
      };
    }
    for (const projection of service.projections) {
      if (projection.queryable === false) continue;
      // The view is the serving generation's table: a next generation is read only once it serves.
      const serving = projectionGenerations(projection).find((g) => g.serving);
      apiEnv[envNames.viewTable(service.name, projection.name)] = {
        kind: "table",
        id: ids.projectionTable(service.name, serving?.name ?? projection.name),
        access: "read",
      };
    }
  }
  b.functions.push({
    id: "api",
    role: "api",
    owner: { kind: "api" },
    ...apiCode(app, app.apiHandler, "api"),
    source: { kind: "http" },
    env: apiEnv,
  });
  if (app.rpcHandler !== undefined || app.rpc === true) {
    // Connect and gRPC-Web: the only two-segment POSTs (the JSON API's are /commands/{service}/{command}).
    b.functions.push({
      id: "api-rpc",
      role: "api",
      owner: { kind: "api" },
      ...apiCode(app, app.rpcHandler, "rpc"),
      source: { kind: "http", route: rpcRoute },
      env: apiEnv,
    });
  }
}

/**
 * The module an API function runs: the app's own, or the entry the framework builds from the
 * services' declarations: what the API reads of the app (its services' names, commands and views)
 * and each command service's contract module, and nothing else of the app.
 */
function apiCode(
  app: AppDefinition,
  handler: string | undefined,
  kind: "api" | "rpc",
): { readonly handler: string; readonly entry?: PlannedEntry } {
  if (handler !== undefined) return { handler };
  const contracts: Record<string, string> = {};
  for (const service of app.services) {
    if (service.aggregate !== undefined) contracts[service.name] = partModule(service.name, { kind: "contract" });
  }
  const manifest: Omit<AppDefinition, "relayHandler" | "archiverHandler"> = {
    prefix: app.prefix,
    buses: app.buses,
    services: app.services.map((service) => ({
      name: service.name,
      bus: service.bus,
      ...(service.commands !== undefined && { commands: service.commands }),
      projections: service.projections.map(({ name, events, key, queryable }) => ({
        name,
        events,
        key,
        ...(queryable !== undefined && { queryable }),
      })),
      reactors: [],
    })),
  };
  return { handler: `shared/entries/${kind}.ts`, entry: { kind, service: "", app: manifest, targets: contracts } };
}
