/** The command handler's Lambda entry, built from a service's contract and decider (shared/parts.ts). */
import type { Contract } from "../domain/proto-contract.ts";
import { commandHandler } from "../handlers/command-handler.ts";
import type { DeciderPart } from "../parts.ts";

export { findContract, findDecider } from "./find.ts";

/** The service's command handler: its queue → decide → the stream, checked by its contract. */
export function commandLambda(contract: Contract, decider: DeciderPart) {
  return commandHandler(decider, { contract: contract.commands, events: contract.events });
}
