/**
 * A service's command contract, from its Protobuf schemas: one message per command, decoded by
 * the Protobuf JSON mapping (protobuf-es) and validated with the field rules that live in the
 * schema (protovalidate's rules, evaluated by shared/domain/rules.ts). The API validates with it
 * before anything reaches a queue, and command handlers and reactors validate again.
 */
import { type DescMessage, type DescService, fromJson, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
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
 * messages; a validation rule in the schema that cannot be evaluated fails here, at load.
 */
export function command<Schema extends DescMessage>(
  schema: Schema,
  aggregateId: (command: CommandFields<Schema>) => string,
): CommandSpec<Schema> {
  const nested = schema.fields.find((f) => f.fieldKind !== "scalar");
  if (nested !== undefined) throw new Error(`${schema.typeName}.${nested.name}: command fields must be scalars`);
  return { schema, rules: planRules(schema), aggregateId: aggregateId as CommandSpec<Schema>["aggregateId"] };
}

/** The typed union of a service's commands: `{ type: "Deposit", accountId, amountCents } | …`. */
export type CommandOf<Specs extends Record<string, CommandSpec<DescMessage>>> = {
  [K in keyof Specs & string]: { type: K } & CommandFields<Specs[K]["schema"]>;
}[keyof Specs & string];

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
    return { ok: false, status: 400, error: describeDecodeError(spec.schema, (error as Error).message) };
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

/** protobuf-es decode errors, in the API's words: the JSON field name first. */
function describeDecodeError(schema: DescMessage, message: string): string {
  const unknownKey = /key "([^"]+)" is unknown/.exec(message);
  if (unknownKey) return `${unknownKey[1]}: unknown field`;
  const field = /decode field [\w.]+\.(\w+) from JSON: (.*)$/.exec(message);
  if (field) {
    const jsonName = schema.fields.find((f) => f.name === field[1])?.jsonName ?? field[1];
    return `${jsonName}: ${field[2]}`;
  }
  return "(body): not a valid command";
}
