/**
 * Finds a declared part among a module's exports (pure): the contract of `contract.ts`, the
 * decider of `decider.ts`, a projection or a reactor by its name. A module that lacks it is
 * refused naming the module, so a misplaced part fails at load, locally as on AWS.
 */
import type { Contract } from "../domain/proto-contract.ts";
import type { DeciderPart, ProjectionPart, ReactorPart } from "../parts.ts";

type Module = Readonly<Record<string, unknown>>;
type Value = Record<string, unknown>;

const isObject = (value: unknown): value is Value => typeof value === "object" && value !== null;

function only(module: Module, test: (value: Value) => boolean, what: string, where: string): unknown {
  const found = [...new Set(Object.values(module).filter((v) => isObject(v) && test(v)))];
  if (found.length !== 1) throw new Error(`${where} must export one ${what}, not ${found.length}`);
  return found[0];
}

/** The contract a module exports (exactly one). */
export function findContract(module: Module, where: string): Contract {
  return only(module, (v) => "proto" in v && "commands" in v, "contract(proto, { … })", where) as Contract;
}

/** The decider a module exports (exactly one). */
export function findDecider(module: Module, where: string): DeciderPart {
  const test = (v: Value) => "initialState" in v && typeof v.decide === "function";
  return only(module, test, "decider { initialState, decide, evolve }", where) as DeciderPart;
}

/** The projection named `name` that a module exports. */
export function findProjection(module: Module, name: string, where: string): ProjectionPart {
  const test = (v: Value) => v.name === name && ("evolve" in v || "counters" in v);
  return only(module, test, `projection({ name: "${name}", … })`, where) as ProjectionPart;
}

/** The reactor named `name` that a module exports. */
export function findReactor(module: Module, name: string, where: string): ReactorPart {
  const test = (v: Value) => v.name === name && typeof v.react === "function";
  return only(module, test, `reactor({ name: "${name}", … })`, where) as ReactorPart;
}
