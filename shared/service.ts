/**
 * Declares a service from its parts: `service({ name, bus, aggregate, projections, reactors })` in
 * `functions/<service>/service.ts`. The aggregate's commands, the API's routes and the event types
 * are read from its Protobuf module; each part's module is found in the service's folder
 * (shared/parts.ts, `partModule`), so no handler path and no second list is written by hand.
 */
import type { CommandsOf, Contract, EventsOf, ProtoModule } from "./domain/proto-contract.ts";
import { type DeciderPart, type ProjectionPart, partModule, type ReactorPart } from "./parts.ts";
import type { ProjectionDefinition, QueueMappingOptions, ReactorDefinition, ServiceDefinition } from "./topology.ts";

export interface ServiceDeclaration<Proto extends ProtoModule = ProtoModule> {
  /** The service's name: its folder under functions/, its stack, its routes and ids. */
  readonly name: string;
  readonly bus: string;
  /** Its commands and events (contract.ts). @default none: a projection-only service */
  readonly contract?: Contract<Proto>;
  /** How its aggregate decides (decider.ts), typed by the contract. */
  // biome-ignore lint/suspicious/noExplicitAny: any state
  readonly decider?: DeciderPart<CommandsOf<Proto>, EventsOf<Proto>, any>;
  readonly projections?: readonly (ProjectionPart | ProjectionDefinition)[];
  // biome-ignore lint/suspicious/noExplicitAny: a service holds reactors of every event type
  readonly reactors?: readonly (ReactorPart<any> | ReactorDefinition)[];
  readonly commandMapping?: QueueMappingOptions;
}

/** The service's definition, for the plan (shared/plan.ts), the API and the local cloud. */
export function service<Proto extends ProtoModule>(declaration: ServiceDeclaration<Proto>): ServiceDefinition {
  const { name, bus, contract, decider, commandMapping } = declaration;
  const base: ServiceDefinition = {
    name,
    bus,
    projections: declaration.projections ?? [],
    reactors: (declaration.reactors ?? []) as readonly ReactorDefinition[],
    ...(commandMapping !== undefined && { commandMapping }),
  };
  if (contract === undefined && decider === undefined) return base;
  if (contract === undefined || decider === undefined) {
    throw new Error(`service "${name}": a contract and a decider go together (contract.ts and decider.ts)`);
  }
  const module = partModule(name, { kind: "decider" });
  return {
    ...base,
    aggregate: { contract, decider },
    aggregateType: contract.type,
    commandHandler: module,
    stateProjection: module,
    contract: contract.commands,
    commands: contract.apiCommands,
    events: Object.keys(contract.events),
  };
}
