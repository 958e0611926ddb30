/**
 * An aggregate's commands and events, read from its Protobuf module (the code protoc-gen-es
 * generates for one `.proto` file), so a command or an event is written down once, in the schema:
 *
 * - a **command** is the input message of an rpc of any service in the file; its type is the
 *   message's name, and the rpc is named after it (`rpc Deposit(Deposit)`);
 * - an **event** is any other top-level message of the file; its schema version is 1 unless the
 *   aggregate names another (`versions`).
 *
 * The same derivation runs at the type level (`CommandsOf`, `EventsOf`) and at run time
 * (`aggregateContract`), so the decider's unions and what the API, the command handler and the
 * reactors check cannot disagree.
 */
import type { DescMessage, DescService } from "@bufbuild/protobuf";
import type { EventSchemas, MessageFields } from "../events/schemas.ts";
import { type CommandSpecs, command } from "./commands.ts";

/** A module protoc-gen-es generated for one `.proto` file (`import * as proto from "…_pb.ts"`). */
export type ProtoModule = object;

/** The last segment of a dotted name: `canon.bank.accounts.v1.Deposit` → `Deposit`. */
type LastSegment<Name extends string> = Name extends `${string}.${infer Rest}` ? LastSegment<Rest> : Name;

/** A generated message schema's short name (its type name's last segment). */
type MessageName<Schema> = Schema extends { readonly typeName: infer Name extends string } ? LastSegment<Name> : never;

/** The message schemas a module exports (`…Schema`). */
type MessagesIn<Proto> = {
  [K in keyof Proto]: Proto[K] extends DescMessage ? (K extends `${string}Schema` ? Proto[K] : never) : never;
}[keyof Proto];

/** The input schemas of a service's rpcs. */
type InputsOf<Service> = Service extends { readonly method: infer Methods }
  ? { [M in keyof Methods]: Methods[M] extends { readonly input: infer Input } ? Input : never }[keyof Methods]
  : never;

/** The input schemas of every rpc of every service a module exports. */
type CommandSchemasIn<Proto> = {
  [K in keyof Proto]: Proto[K] extends DescService ? InputsOf<Proto[K]> : never;
}[keyof Proto];

type CommandOfSchema<Schema> = Schema extends DescMessage
  ? { readonly type: MessageName<Schema> } & MessageFields<Schema>
  : never;

type EventOfSchema<Schema> = Schema extends DescMessage
  ? { readonly type: MessageName<Schema>; readonly data: MessageFields<Schema> }
  : never;

/** A Protobuf module, or the module of a contract. */
type ProtoOf<T> = T extends { readonly proto: infer Proto } ? Proto : T;

/**
 * The typed union of a contract's (or a Protobuf module's) commands:
 * `{ type: "Deposit", accountId, amountCents } | …`.
 */
export type CommandsOf<T> = CommandOfSchema<CommandSchemasIn<ProtoOf<T>>>;

/** The typed union of a contract's (or a Protobuf module's) events: `{ type: "FundsDeposited"; data: { … } } | …`. */
export type EventsOf<T> = EventOfSchema<Exclude<MessagesIn<ProtoOf<T>>, CommandSchemasIn<ProtoOf<T>>>>;

/** The field names every command of a module has: the candidates for its aggregate id. */
export type CommonCommandField<Proto> = Exclude<keyof CommandsOf<Proto>, "type"> & string;

/** What an aggregate's contract is read from. */
export interface ContractSource {
  /** The aggregate type its events carry (e.g. "Account"). */
  readonly type: string;
  readonly proto: ProtoModule;
  /** The field of every command that names its aggregate (its JSON name, e.g. `accountId`). */
  readonly id: string;
  /** The services whose rpcs the API routes; the others' commands come from reactors only. @default none */
  readonly api?: DescService | readonly DescService[];
  /** Event schema versions other than 1 (bump one, and add an upcaster, for a change old readers can't take). */
  readonly versions?: { readonly [type: string]: number | undefined };
}

/** An aggregate's contract: its commands (by type), the ones the API routes, its events' schemas. */
export interface AggregateContract {
  readonly commands: CommandSpecs;
  readonly apiCommands: readonly string[];
  readonly events: EventSchemas;
}

/** A service's contract, declared from its Protobuf module (typed by it). */
export interface Contract<Proto extends ProtoModule = ProtoModule> extends ContractSource, AggregateContract {
  readonly proto: Proto;
}

/**
 * Declares an aggregate's contract from its Protobuf module, in `functions/<service>/contract.ts`:
 * `contract(proto, { type: "Account", id: "accountId", api: proto.AccountsService })`. Its commands
 * and events are read from the module at once, so a schema the rules refuse fails at load.
 */
export function contract<Proto extends ProtoModule>(
  proto: Proto,
  options: {
    readonly type: string;
    readonly id: CommonCommandField<Proto>;
    readonly api?: DescService | readonly DescService[];
    readonly versions?: { readonly [T in EventsOf<Proto>["type"]]?: number };
  },
): Contract<Proto> {
  const source: ContractSource = { ...options, proto };
  return { ...source, ...aggregateContract(source), proto };
}

const derived = new WeakMap<ContractSource, AggregateContract>();

/**
 * Reads an aggregate's contract from its Protobuf module, once per declaration. A schema the
 * rules refuse (an rpc not named after its message, a command without the id field, a version
 * for a message that is not an event) fails here, at load, naming the schema.
 */
export function aggregateContract(source: ContractSource): AggregateContract {
  const known = derived.get(source);
  if (known !== undefined) return known;
  const exported = Object.values(source.proto) as { kind?: unknown }[];
  const services = exported.filter((value): value is DescService => value?.kind === "service");
  const messages = exported.filter((value): value is DescMessage => value?.kind === "message");
  const commands: CommandSpecs = {};
  for (const service of services) {
    for (const method of service.methods) {
      const schema = method.input;
      if (method.name !== schema.name) {
        throw new Error(
          `${service.typeName}.${method.name} takes ${schema.typeName}: name each rpc after its command message`,
        );
      }
      const idField = schema.fields.find((f) => f.jsonName === source.id);
      if (idField === undefined || idField.fieldKind !== "scalar") {
        throw new Error(`${schema.typeName} has no field ${source.id}, the ${source.type} id every command carries`);
      }
      commands[schema.name] = command(schema, (fields) => String((fields as Record<string, unknown>)[source.id]));
    }
  }
  const commandTypes = new Set(Object.values(commands).map((spec) => spec.schema.typeName));
  const events: Record<string, { schema: DescMessage; version: number }> = {};
  for (const schema of messages) {
    if (commandTypes.has(schema.typeName)) continue;
    events[schema.name] = { schema, version: source.versions?.[schema.name] ?? 1 };
  }
  for (const [type, version] of Object.entries(source.versions ?? {})) {
    if (version === undefined) continue;
    if (!Object.hasOwn(events, type)) throw new Error(`${source.type}: versions names ${type}, which is not an event`);
    if (!Number.isInteger(version) || version < 1) {
      throw new Error(`${source.type}: the version of ${type} must be a whole number from 1, not ${version}`);
    }
  }
  const api: readonly DescService[] =
    source.api === undefined ? [] : Array.isArray(source.api) ? source.api : [source.api as DescService];
  const apiCommands = api.flatMap((s) => s.methods.map((m) => m.name));
  const contract = { commands, apiCommands, events };
  derived.set(source, contract);
  return contract;
}
