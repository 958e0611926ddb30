/**
 * A service's command contract, from its Protobuf schemas: one message per command, decoded by
 * the Protobuf JSON mapping (protobuf-es) and validated with the field rules that live in the
 * schema (protovalidate's rules, evaluated by shared/domain/rules.ts). The API validates with it
 * before anything reaches a queue, and command handlers and reactors validate again.
 */
import {
  type DescField,
  type DescMessage,
  type DescService,
  fromJson,
  type JsonValue,
  type MessageShape,
  ScalarType,
} from "@bufbuild/protobuf";
import type { MessageFields } from "../events/schemas.ts";
import { type MessageRules, planRules } from "./rules.ts";

/** A command's fields as the domain sees them: no Protobuf bookkeeping, 64-bit integers as numbers. */
export type CommandFields<Schema extends DescMessage> = MessageFields<Schema>;

export interface CommandSpec<Schema extends DescMessage = DescMessage> {
  readonly schema: Schema;
  /** The schema's validation rules, planned when the command is declared. */
  readonly rules: MessageRules;
  /** The aggregate this command is for: the FIFO message group and the stream partition key. */
  aggregateId(command: CommandFields<Schema>): string;
}

export type CommandSpecs = Record<string, CommandSpec>;

/**
 * Declares one command: its Protobuf message and where its aggregate id is. Commands are flat
 * messages (scalars and enums); a validation rule in the schema that cannot be evaluated fails
 * here, at load.
 */
export function command<Schema extends DescMessage>(
  schema: Schema,
  aggregateId: (command: CommandFields<Schema>) => string,
): CommandSpec<Schema> {
  const nested = schema.fields.find((f) => f.fieldKind !== "scalar" && f.fieldKind !== "enum");
  if (nested !== undefined) throw new Error(`${schema.typeName}.${nested.name}: command fields must be scalars`);
  return { schema, rules: planRules(schema), aggregateId: aggregateId as CommandSpec<Schema>["aggregateId"] };
}

/** The typed union of a service's commands: `{ type: "Deposit", accountId, amountCents } | …`. */
export type CommandOf<Specs extends Record<string, CommandSpec<DescMessage>>> = {
  [K in keyof Specs & string]: { type: K } & CommandFields<Specs[K]["schema"]>;
}[keyof Specs & string];

/**
 * Every service's command contract, by service name, from the services' declarations: what the
 * API validates against and reactors send by. A service whose API takes commands must declare its
 * contract (refused at load otherwise).
 */
export function contractsOf(app: {
  readonly services: readonly {
    readonly name: string;
    readonly contract?: CommandSpecs;
    readonly commands?: readonly string[];
  }[];
}): Record<string, CommandSpecs> {
  const contracts: Record<string, CommandSpecs> = {};
  for (const service of app.services) {
    if (service.contract !== undefined) contracts[service.name] = service.contract;
    const missing = (service.commands ?? []).filter((name) => !Object.hasOwn(service.contract ?? {}, name));
    if (missing.length > 0) throw new Error(`${service.name}: no command in its contract for ${missing.join(", ")}`);
  }
  return contracts;
}

/** The command names of Protobuf services: one per rpc (the API's routes map onto them). */
export function rpcNames(...services: readonly DescService[]): string[] {
  return services.flatMap((service) => service.methods.map((method) => method.name));
}

export type ValidationResult =
  | { readonly ok: true; readonly command: { type: string } & Record<string, unknown>; readonly aggregateId: string }
  | { readonly ok: false; readonly status: 400 | 404; readonly error: string };

/** Validates an untrusted JSON payload as the named command; the error names the offending field. */
export function validateCommand(specs: CommandSpecs, name: string, payload: unknown): ValidationResult {
  if (!Object.hasOwn(specs, name)) return { ok: false, status: 404, error: `unknown command "${name}"` };
  const spec = specs[name] as CommandSpec;
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    return { ok: false, status: 400, error: "(body): must be a JSON object" };
  }
  let message: MessageShape<DescMessage>;
  try {
    message = fromJson(spec.schema, payload as JsonValue);
  } catch (error) {
    const described = describeDecodeError(spec.schema, payload as Record<string, unknown>, (error as Error).message);
    return { ok: false, status: 400, error: described };
  }
  const violation = spec.rules(message as unknown as Record<string, unknown>);
  if (violation !== undefined) {
    return { ok: false, status: 400, error: `${violation.field || "(body)"}: ${violation.message}` };
  }
  const fields = commandFields(spec.schema, message);
  return { ok: true, command: { ...fields, type: name }, aggregateId: spec.aggregateId(fields as never) };
}

/** A decoded message's fields as plain values (64-bit integers, bounded by their rules, as numbers). */
function commandFields(schema: DescMessage, message: MessageShape<DescMessage>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const field of schema.fields) {
    const value = (message as Record<string, unknown>)[field.localName];
    fields[field.jsonName] = typeof value === "bigint" ? Number(value) : value;
  }
  return fields;
}

/**
 * A payload the Protobuf JSON mapping refused, in the user's words: the field, the rule it
 * breaks, the value sent (`amountCents: must be a whole number from 0 to …; got -5`), never
 * protobuf-es's own. Only the field is read from its error; the rule comes from the descriptor.
 */
function describeDecodeError(schema: DescMessage, payload: Record<string, unknown>, message: string): string {
  const unknown = /key "([^"]+)" is unknown/.exec(message)?.[1];
  if (unknown !== undefined) {
    const fields = schema.fields.map((f) => f.jsonName).join(", ");
    return `${unknown}: not a field of ${schema.name} (its fields: ${fields}); got ${shown(payload[unknown])}`;
  }
  // A field's error names the field; an enum's names the enum: the field is the one of it sent a value it lacks.
  const named = /decode (?:field [\w.]+\.(\w+)|enum ([\w.]+)) from JSON/.exec(message);
  const field = schema.fields.find((f) =>
    named?.[1] !== undefined
      ? f.name === named[1]
      : f.fieldKind === "enum" &&
        f.enum.typeName === named?.[2] &&
        typeof sent(payload, f) === "string" &&
        !f.enum.values.some((v) => v.name === sent(payload, f)),
  );
  if (field === undefined) return "(body): not a valid command";
  const value = sent(payload, field);
  return `${field.jsonName}: must be ${takes(field, value)}; got ${shown(value)}`;
}

/** A field's value in a JSON payload, which may name it by its JSON name or its Protobuf name. */
function sent(payload: Record<string, unknown>, field: DescField): unknown {
  return Object.hasOwn(payload, field.jsonName) ? payload[field.jsonName] : payload[field.name];
}

/** What a field takes, in words: "text", "one of …", "a whole number from 0 to 255". */
function takes(field: DescField, value: unknown): string {
  if (field.fieldKind === "enum") return `one of ${field.enum.values.map((v) => v.name).join(", ")}`;
  if (field.fieldKind !== "scalar") return "a valid value";
  const type = ScalarType[field.scalar];
  const bits = /\d+$/.exec(type)?.[0]; // integers only: INT32, UINT64, SFIXED32, …
  if (bits === undefined) {
    const words: Partial<Record<string, string>> = { STRING: "text", BOOL: "true or false", BYTES: "base64 bytes" };
    return words[type] ?? "a number";
  }
  const n =
    typeof value === "number" || (typeof value === "string" && value.trim() !== "") ? Number(value) : Number.NaN;
  if (!Number.isFinite(n)) return "a whole number";
  if (!Number.isInteger(n)) return "a whole number, without a fraction";
  const width = BigInt(bits);
  const signed = !/^U|^F/.test(type); // UINT… and FIXED… are unsigned
  const max = (signed ? 2n ** (width - 1n) : 2n ** width) - 1n;
  return `a whole number from ${signed ? -max - 1n : 0n} to ${max}`;
}

/** A value as the user sent it, in JSON, shortened. */
function shown(value: unknown): string {
  const json = JSON.stringify(value) ?? "nothing";
  return json.length > 40 ? `${json.slice(0, 39)}…` : json;
}
