/** A declared reactor's Lambda entry (shared/parts.ts). */
import type { CommandSpecs } from "../domain/commands.ts";
import type { Contract } from "../domain/proto-contract.ts";
import type { EventEnvelope } from "../events/envelope.ts";
import { reactorHandler } from "../handlers/reactor.ts";
import type { ReactorPart } from "../parts.ts";

export { findContract, findReactor } from "./find.ts";

/**
 * The reactor of `service` (named `<service>.<name>`: its command ids derive from it), validating
 * what it sends against its targets' contracts, as the API does.
 */
export function reactorLambda(service: string, part: ReactorPart, targets: Readonly<Record<string, Contract>>) {
  const contracts: Record<string, CommandSpecs> = {};
  for (const [name, contract] of Object.entries(targets)) contracts[name] = contract.commands;
  // The runtime hands `react` only the events it subscribes to, upcast, their data checked
  // against its schema when it was appended.
  const react = part.react as (event: EventEnvelope) => ReturnType<ReactorPart["react"]>;
  return reactorHandler({ name: `${service}.${part.name}`, react }, contracts, { upcasters: part.upcasters });
}
