/**
 * A service's projections in the plan (laws F, G, H, I): per generation, its FIFO queue
 * subscribed to the bus, its own table, its consumer (detached while it warms up) and, while
 * detached, its replayer job. A projection gets table references only: nothing to publish with.
 */
import { partModule } from "../parts.ts";
import type { AppDefinition, ProjectionDefinition, ReactorDefinition, ServiceDefinition } from "../topology.ts";
import type { PlanBuilder } from "./builder.ts";
import { envNames, ids, type Owner, type PlannedEntry, type PlannedQueue, type ResourceRef } from "./model.ts";

/** Every generation of a service's projections. */
export function planProjections(b: PlanBuilder, service: ServiceDefinition, owner: Owner): void {
  for (const { projection, name, detached } of service.projections.flatMap(projectionGenerations)) {
    const q = b.queue(ids.projectionQueue(service.name, name), owner, projection.mapping);
    const t = b.table(ids.projectionTable(service.name, name), owner);
    b.subscriptions.push({ bus: service.bus, queueId: q.id, eventTypes: projection.events });
    const consumer = `${service.name}-${name}`;
    const code = partCode(service, "projection", projection);
    b.functions.push({
      id: consumer,
      role: "projection",
      owner,
      ...code,
      source: b.sqsSource(q.id, projection.mapping),
      env: {
        [envNames.table]: { kind: "table", id: t.id, access: "readWrite" },
        ...claimReader(service.bus),
        ...parking(q),
      },
      ...(detached ? { startsDetached: true } : {}),
    });
    if (detached) {
      // The same module's `replay` export: it fills the table from the archive, then attaches the consumer.
      b.functions.push({
        id: `${consumer}-replayer`,
        role: "replayer",
        owner,
        handler: code.handler,
        ...(code.entry !== undefined && { entry: { ...code.entry, kind: "replayer" } }),
        handlerExport: "replay",
        source: { kind: "job" },
        env: {
          [envNames.table]: { kind: "table", id: t.id, access: "readWrite" },
          [envNames.bus]: { kind: "value", value: service.bus },
          [envNames.archiveBucket]: { kind: "bucket", bus: service.bus, access: "read" },
          [envNames.streamName]: { kind: "stream", bus: service.bus, access: "read" },
          [envNames.consumerFunction]: { kind: "value", value: consumer },
          [envNames.projectionEvents]: { kind: "value", value: JSON.stringify(projection.events) },
        },
      });
    }
  }
}

/**
 * The module a projection or a reactor runs: its `handler` module, or, for a declared part
 * (shared/parts.ts), its module in the service's folder with the entry the framework builds. A
 * reactor's entry names the contract module of each service it sends to.
 */
export function partCode(
  service: ServiceDefinition,
  kind: "projection" | "reactor",
  part: ProjectionDefinition | ReactorDefinition,
): { readonly handler: string; readonly entry?: PlannedEntry } {
  if (part.handler !== undefined) return { handler: part.handler };
  const entry: PlannedEntry = { kind, service: service.name, name: part.name };
  if (kind === "reactor") {
    const targets: Record<string, string> = {};
    for (const target of (part as ReactorDefinition).sendsTo) {
      targets[target] = partModule(target, { kind: "contract" });
    }
    return { handler: partModule(service.name, { kind, name: part.name }), entry: { ...entry, targets } };
  }
  const view = "counters" in part ? "counters" : "aggregate";
  return { handler: partModule(service.name, { kind, name: part.name }), entry: { ...entry, view } };
}

/**
 * Sequenced parking for a projection (shared/handlers/parking.ts): an event still failing two
 * receives before the queue would dead-letter it is parked with its aggregate, so the aggregate's
 * order holds while others flow on. A queue with fewer than 4 receives leaves no room: failing
 * events then go to its dead-letter queue.
 */
export function parking(queue: PlannedQueue): Record<string, ResourceRef> {
  if (queue.maxReceiveCount < 4) return {};
  return { [envNames.parkAfterReceives]: { kind: "value", value: String(queue.maxReceiveCount - 2) } };
}

/** Read access to a bus's archive, where events too large for a message wait (claim checks). */
export function claimReader(bus: string): Record<string, ResourceRef> {
  return { [envNames.archiveBucket]: { kind: "bucket", bus, access: "read" } };
}

/** One generation of a projection the plan holds (see `ProjectionDefinition.generations`). */
export interface ProjectionGeneration {
  readonly projection: ProjectionDefinition;
  readonly generation: number;
  /** Its name in ids (`balances`, `balances-g2`): generation 1 keeps the projection's own name. */
  readonly name: string;
  /** The API reads this one. */
  readonly serving: boolean;
  /** Its consumer starts detached, attached once warmed up from the archive. */
  readonly detached: boolean;
}

/** A projection's generations in the plan: the serving one, and the next while it is built. */
export function projectionGenerations(projection: ProjectionDefinition): ProjectionGeneration[] {
  const { serving, next } = projection.generations ?? { serving: 1 };
  const name = (generation: number) => (generation === 1 ? projection.name : `${projection.name}-g${generation}`);
  return [
    { projection, generation: serving, name: name(serving), serving: true, detached: projection.warmUp === true },
    ...(next === undefined ? [] : [{ projection, generation: next, name: name(next), serving: false, detached: true }]),
  ];
}

/** The projection, and which generation of it, a `<service>.<name>` names (`accounts.balances-g2`). */
export function findProjectionGeneration(
  app: AppDefinition,
  qualified: string,
): { readonly service: ServiceDefinition; readonly generation: ProjectionGeneration } | undefined {
  const [serviceName, name] = qualified.split(".");
  const service = app.services.find((s) => s.name === serviceName);
  for (const projection of service?.projections ?? []) {
    const generation = projectionGenerations(projection).find((g) => g.name === name);
    if (service && generation) return { service, generation };
  }
  return undefined;
}

/** Every projection generation an app plans, as `<service>.<name>`. */
export function plannedProjectionNames(app: AppDefinition): string[] {
  return app.services.flatMap((s) => s.projections.flatMap(projectionGenerations).map((g) => `${s.name}.${g.name}`));
}
