/**
 * A service's command side in the plan (laws A and D): its command queue and handler (which
 * appends to the bus and reads only its own state), its state table folded from the bus by its
 * state projection, and its outcomes table (invariant 5).
 */
import { partModule } from "../parts.ts";
import type { ServiceDefinition } from "../topology.ts";
import type { PlanBuilder } from "./builder.ts";
import { commandMaxConcurrency, envNames, ids, type Owner } from "./model.ts";
import { claimReader, parking } from "./projections.ts";

/** A service's write side: its command queue and handler, its state table and projection, its outcomes. */
export function planCommandSide(b: PlanBuilder, service: ServiceDefinition, owner: Owner): void {
  const commands = b.queue(ids.commandQueue(service.name), owner, service.commandMapping);
  const stateTable = b.table(ids.stateTable(service.name), owner);
  const outcomes = b.table(ids.outcomesTable(service.name), owner);
  const stateQueue = b.queue(ids.stateQueue(service.name), owner, undefined);
  b.subscriptions.push({ bus: service.bus, queueId: stateQueue.id, eventTypes: service.events ?? [] });
  b.functions.push({
    id: `${service.name}-command-handler`,
    role: "command-handler",
    owner,
    handler: service.commandHandler as string,
    ...(service.aggregate !== undefined && {
      entry: {
        kind: "command-handler",
        service: service.name,
        contract: partModule(service.name, { kind: "contract" }),
      },
    }),
    source: b.sqsSource(commands.id, { maxConcurrency: commandMaxConcurrency, ...service.commandMapping }),
    env: {
      [envNames.service]: { kind: "value", value: service.name },
      [envNames.bus]: { kind: "value", value: service.bus },
      [envNames.aggregateType]: { kind: "value", value: service.aggregateType as string },
      [envNames.streamName]: { kind: "stream", bus: service.bus, access: "write" },
      [envNames.stateTable]: { kind: "table", id: stateTable.id, access: "read" },
      [envNames.outcomesTable]: { kind: "table", id: outcomes.id, access: "readWrite" },
      // The arbiter's verdicts: a commit's fate a hop before the state projection shows it (read only).
      [envNames.arbitrationTable]: { kind: "table", id: ids.arbitrationTable(service.bus), access: "read" },
      // Claim checks: a commit too large for a stream record is stored here.
      [envNames.archiveBucket]: { kind: "bucket", bus: service.bus, access: "readWrite" },
    },
  });
  b.functions.push({
    id: `${service.name}-state`,
    role: "projection",
    owner,
    handler: service.stateProjection as string,
    ...(service.aggregate !== undefined && { entry: { kind: "state", service: service.name } }),
    source: b.sqsSource(stateQueue.id, undefined),
    env: {
      [envNames.table]: { kind: "table", id: stateTable.id, access: "readWrite" },
      ...claimReader(service.bus),
      ...parking(stateQueue),
    },
  });
}
