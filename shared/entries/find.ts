/**
 * Finds a declared part among a module's exports (pure): the contract of `contract.ts`, the
 * decider of `decider.ts`, a projection or a reactor by its name. A module that lacks it is
 * refused naming the module, so a misplaced part fails at load, locally as on AWS.
 */
import type { Contract } from "../domain/proto-contract.ts";
import type { DeciderPart, ProjectionPart, ReactorPart } from "../parts.ts";
import { partKindOf } from "../parts.ts";

type Module = Readonly<Record<string, unknown>>;

const declarations = {
  contract: "export const … = contract(proto, { type, id, api })",
  decider: "export const …: Decider<Command, Event, State> = { initialState, decide, evolve }",
};

function findOne(module: Module, kind: "contract" | "decider", where: string): unknown {
  const found = [...new Set(Object.values(module).filter((value) => partKindOf(value) === kind))];
  if (found.length !== 1) {
    throw new Error(`${where} must export one ${kind} (\`${declarations[kind]}\`), found ${found.length}`);
  }
  return found[0];
}

/** The contract a module exports (exactly one). */
export function findContract(module: Module, where: string): Contract {
  return findOne(module, "contract", where) as Contract;
}

/** The decider a module exports (exactly one). */
export function findDecider(module: Module, where: string): DeciderPart {
  return findOne(module, "decider", where) as DeciderPart;
}

/** The projection named `name` that a module exports. */
export function findProjection(module: Module, name: string, where: string): ProjectionPart {
  return findNamed(module, "projection", name, where) as ProjectionPart;
}

/** The reactor named `name` that a module exports. */
export function findReactor(module: Module, name: string, where: string): ReactorPart {
  return findNamed(module, "reactor", name, where) as ReactorPart;
}

function findNamed(module: Module, kind: "projection" | "reactor", name: string, where: string): unknown {
  const found = Object.values(module).find(
    (value) => partKindOf(value) === kind && (value as { name: string }).name === name,
  );
  if (found === undefined) {
    throw new Error(`${where} exports no ${kind} named "${name}" (declare it with ${kind}({ name: "${name}", … }))`);
  }
  return found;
}
