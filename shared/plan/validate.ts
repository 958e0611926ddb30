/** The checks an application's declaration passes before it is planned, each problem in words. */
import type { AppDefinition, BusDefinition, ServiceDefinition, StreamReadMode } from "../topology.ts";
import { projectionGenerations } from "./projections.ts";

const namePattern = /^[a-z][a-z0-9-]{0,30}$/;

/** Throws one error listing every problem of the declaration. */
export function validateApp(app: AppDefinition): void {
  const problems: string[] = [];
  if (!namePattern.test(app.prefix)) problems.push(`prefix "${app.prefix}" must match ${namePattern}`);
  const busNames = new Set(app.buses.map((b: BusDefinition) => b.name));
  const serviceNames = new Set<string>();
  const readModes: readonly (StreamReadMode | undefined)[] = ["polling", "enhanced-fan-out", undefined];
  for (const bus of app.buses) {
    if (!namePattern.test(bus.name)) problems.push(`bus "${bus.name}" must match ${namePattern}`);
    if (!readModes.includes(bus.relayReadsBy)) {
      problems.push(
        `bus "${bus.name}": relayReadsBy must be "polling" or "enhanced-fan-out", not ${JSON.stringify(bus.relayReadsBy)}`,
      );
    }
    const lanes = bus.relayParallelization;
    if (lanes !== undefined && !(Number.isInteger(lanes) && lanes >= 1 && lanes <= 10)) {
      problems.push(`bus "${bus.name}": relayParallelization must be an integer from 1 to 10, not ${lanes}`);
    }
    if (bus.kind !== undefined && bus.kind !== "events" && bus.kind !== "telemetry") {
      problems.push(`bus "${bus.name}": kind must be "events" or "telemetry", not ${JSON.stringify(bus.kind)}`);
    }
    const days = bus.telemetryRetentionDays;
    if (days !== undefined && bus.kind !== "telemetry") {
      problems.push(
        `bus "${bus.name}": telemetryRetentionDays is for a telemetry bus (an events bus's archive keeps everything)`,
      );
    } else if (days !== undefined && !(Number.isInteger(days) && days >= 1 && days <= 3650)) {
      problems.push(
        `bus "${bus.name}": telemetryRetentionDays must be a whole number of days from 1 to 3650, not ${days}`,
      );
    }
    if (bus.kind === "telemetry" && (bus.relayReadsBy !== undefined || lanes !== undefined)) {
      problems.push(
        `bus "${bus.name}" is a telemetry bus: it has no relay, so relayReadsBy and relayParallelization do not apply`,
      );
    }
  }
  const telemetryBuses = app.buses.filter((b) => b.kind === "telemetry").map((b) => `"${b.name}"`);
  if (telemetryBuses.length > 1) {
    problems.push(`at most one telemetry bus, not ${telemetryBuses.length} (${telemetryBuses.join(", ")})`);
  }
  for (const service of app.services as readonly ServiceDefinition[]) {
    if (!namePattern.test(service.name)) problems.push(`service "${service.name}" must match ${namePattern}`);
    if (serviceNames.has(service.name)) problems.push(`service "${service.name}" is declared twice`);
    serviceNames.add(service.name);
    if (!busNames.has(service.bus)) problems.push(`service "${service.name}" is on unknown bus "${service.bus}"`);
    if (app.buses.some((b) => b.name === service.bus && b.kind === "telemetry")) {
      problems.push(
        `service "${service.name}" is on "${service.bus}", a telemetry bus: its events need an events bus (nothing subscribes to telemetry)`,
      );
    }
    const commandSide = [service.commandHandler, service.stateProjection, service.aggregateType];
    if (commandSide.some((v) => v !== undefined) && commandSide.some((v) => v === undefined)) {
      problems.push(`service "${service.name}": commandHandler, stateProjection and aggregateType go together`);
    }
    if (service.commandHandler === undefined && (service.commands?.length ?? 0) > 0) {
      problems.push(`service "${service.name}" declares commands but no commandHandler`);
    }
    const local = new Set<string>(["commands", "state", "outcomes"]);
    for (const part of [...service.projections, ...service.reactors]) {
      if (!namePattern.test(part.name)) problems.push(`${service.name}.${part.name}: name must match ${namePattern}`);
      if (local.has(part.name)) problems.push(`${service.name}.${part.name}: name is taken`);
      local.add(part.name);
      if (part.events.length === 0) problems.push(`${service.name}.${part.name}: subscribes to no event type`);
    }
    const mappings = [
      ["commandMapping", service.commandMapping],
      ...[...service.projections, ...service.reactors].map((p) => [`${p.name}.mapping`, p.mapping] as const),
    ] as const;
    for (const [where, mapping] of mappings) {
      const max = mapping?.maxConcurrency;
      // Lambda's ScalingConfig takes 2 to 1000.
      if (max !== undefined && !(Number.isInteger(max) && max >= 2 && max <= 1000)) {
        problems.push(`${service.name}.${where}: maxConcurrency must be an integer from 2 to 1000, not ${max}`);
      }
    }
    for (const projection of service.projections) {
      const { serving, next } = projection.generations ?? { serving: 1 };
      const where = `${service.name}.${projection.name}`;
      if (!Number.isInteger(serving) || serving < 1 || serving > 999) {
        problems.push(`${where}: generations.serving must be an integer from 1 to 999, not ${serving}`);
      }
      if (next !== undefined && (!Number.isInteger(next) || next <= serving || next > 999)) {
        problems.push(
          `${where}: generations.next must be an integer above serving (${serving}) and at most 999, not ${next}`,
        );
      }
      const taken = projectionGenerations(projection)
        .map((g) => g.name)
        .filter((name) => name !== projection.name);
      for (const other of [...service.projections, ...service.reactors]) {
        if (other !== projection && taken.includes(other.name)) {
          problems.push(`${where}: generation name "${other.name}" is taken by another projection or reactor`);
        }
      }
    }
  }
  if (app.apiHandler === undefined || (app.rpc === true && app.rpcHandler === undefined)) {
    for (const service of app.services) {
      if ((service.commands?.length ?? 0) > 0 && service.aggregate === undefined) {
        // The API's built entry reads the contracts from the services' contract.ts.
        problems.push(
          `service "${service.name}" takes API commands but declares no contract: name the app's apiHandler`,
        );
      }
    }
  }
  for (const service of app.services) {
    for (const reactor of service.reactors) {
      for (const target of reactor.sendsTo) {
        const targetService = app.services.find((s) => s.name === target);
        if (targetService === undefined)
          problems.push(`${service.name}.${reactor.name} sends to unknown service "${target}"`);
        else if (targetService.commandHandler === undefined) {
          problems.push(`${service.name}.${reactor.name} sends to "${target}", which takes no commands`);
        } else if (reactor.handler === undefined && targetService.aggregate === undefined) {
          // A declared reactor checks what it sends against its targets' aggregates.
          problems.push(`${service.name}.${reactor.name} sends to "${target}", which declares no aggregate`);
        }
      }
    }
  }
  if (problems.length > 0) throw new Error(`invalid application declaration:\n- ${problems.join("\n- ")}`);
}
