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
 * (`contract`), so the decider's unions and what the API, the command handler and the
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

/** An aggregate's contract: what it is read from, and its commands, API routes and event schemas. */
export interface Contract<Proto extends ProtoModule = ProtoModule> {
  /** The aggregate type its events carry (e.g. "Account"). */
  readonly type: string;
  readonly proto: Proto;
  /** The field of every command that names its aggregate (its JSON name, e.g. `accountId`). */
  readonly id: string;
  /** The services whose rpcs the API routes; the others' commands come from reactors only. @default none */
  readonly api?: DescService | readonly DescService[];
  /** Event schema versions other than 1 (bump one, and add an upcaster, for a change old readers can't take). */
  readonly versions?: { readonly [type: string]: number | undefined };
  /** Its commands, by type. */
  readonly commands: CommandSpecs;
  /** The commands the API routes (the rpcs of `api`). */
  readonly apiCommands: readonly string[];
  /** Its events' schemas, by type. */
  readonly events: EventSchemas;
}

/**
 * Declares an aggregate's contract from its Protobuf module, in `functions/<service>/contract.ts`:
 * `contract(proto, { type: "Account", id: "accountId", api: proto.AccountsService })`. Its commands
 * and events are read from the module at once, so a schema the rules refuse (an rpc not named
 * after its message, a command without the id field, a version for a message that is not an
 * event) fails at load, naming the schema.
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
  const { type, id, api, versions = {} } = options;
  const exported = Object.values(proto) as { kind?: unknown }[];
  const commands: CommandSpecs = {};
  for (const service of exported.filter((v): v is DescService => v?.kind === "service")) {
    for (const { name, input } of service.methods) {
      if (name !== input.name) throw new Error(`${service.typeName}.${name}: name the rpc after its message`);
      if (!input.fields.some((f) => f.jsonName === id && f.fieldKind === "scalar")) {
        throw new Error(`${input.typeName} has no field ${id}, the ${type} id`);
      }
      commands[name] = command(input, (fields) => String((fields as Record<string, unknown>)[id]));
    }
  }
  const events: Record<string, { schema: DescMessage; version: number }> = {};
  for (const schema of exported.filter((v): v is DescMessage => v?.kind === "message")) {
    if (commands[schema.name]?.schema !== schema) {
      events[schema.name] = { schema, version: (versions as Record<string, number>)[schema.name] ?? 1 };
    }
  }
  for (const [event, version] of Object.entries(versions as Record<string, number>)) {
    if (!events[event] || !(Number.isInteger(version) && version >= 1)) {
      throw new Error(`${type}: versions.${event} must be an event's version (a whole number from 1)`);
    }
  }
  const routed: readonly DescService[] = api === undefined ? [] : Array.isArray(api) ? api : [api as DescService];
  const apiCommands = routed.flatMap((s) => s.methods.map((m) => m.name));
  return { type, proto, id, ...(api !== undefined && { api }), versions, commands, apiCommands, events };
}
