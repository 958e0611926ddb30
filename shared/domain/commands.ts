/**
 * A service's command contract: one schema per command name, and how to find the aggregate
 * a command addresses. The API validates with it before anything reaches a queue.
 */
import type { z } from "zod";

export interface CommandSpec<Schema extends z.ZodType> {
  readonly schema: Schema;
  /** The aggregate this command is for: the FIFO message group and the stream partition key. */
  aggregateId(command: z.infer<Schema>): string;
}

export type CommandSpecs = Record<string, CommandSpec<z.ZodType>>;

/** Declares one command: its schema and where its aggregate id is (typed from the schema). */
export function command<Schema extends z.ZodType>(
  schema: Schema,
  aggregateId: (command: z.infer<Schema>) => string,
): CommandSpec<Schema> {
  return { schema, aggregateId };
}

/** The typed union of a service's commands: `{ type: "Deposit", accountId, amountCents } | …`. */
export type CommandOf<Specs extends CommandSpecs> = {
  [K in keyof Specs & string]: { type: K } & z.infer<Specs[K]["schema"]>;
}[keyof Specs & string];

export type ValidationResult =
  | { readonly ok: true; readonly command: { type: string } & Record<string, unknown>; readonly aggregateId: string }
  | { readonly ok: false; readonly status: 400 | 404; readonly error: string };

/** Validates an untrusted payload as the named command; the error names the offending field. */
export function validateCommand(specs: CommandSpecs, name: string, payload: unknown): ValidationResult {
  if (!Object.hasOwn(specs, name)) return { ok: false, status: 404, error: `unknown command "${name}"` };
  const spec = specs[name] as CommandSpec<z.ZodType>;
  const result = spec.schema.safeParse(payload);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue?.path.length ? issue.path.join(".") : "(body)";
    return { ok: false, status: 400, error: `${field}: ${issue?.message ?? "invalid"}` };
  }
  const command = { ...(result.data as Record<string, unknown>), type: name };
  return { ok: true, command, aggregateId: spec.aggregateId(result.data) };
}
