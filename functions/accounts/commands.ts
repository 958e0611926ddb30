/**
 * The accounts service's command contract: what the API accepts, validated at the edge.
 * Field names follow the Protobuf JSON mapping (lowerCamelCase).
 */
import { z } from "zod";
import { command } from "../../shared/domain/commands.ts";

const accountId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-' only");
const amountCents = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const accountCommands = {
  OpenAccount: command(z.strictObject({ accountId, owner: z.string().trim().min(1).max(200) }), (c) => c.accountId),
  Deposit: command(z.strictObject({ accountId, amountCents }), (c) => c.accountId),
  Withdraw: command(z.strictObject({ accountId, amountCents }), (c) => c.accountId),
};
