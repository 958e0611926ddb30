/**
 * The accounts service's command contract: what the API accepts, validated at the edge.
 * Field names follow the Protobuf JSON mapping (lowerCamelCase). The transfer legs
 * (DebitForTransfer, CreditForTransfer, RefundTransfer) are sent by the transfers saga.
 */
import { z } from "zod";
import { command } from "../../shared/domain/commands.ts";

export const entityId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-' only");
export const amountCents = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

const transferLeg = z.strictObject({ accountId: entityId, transferId: entityId, amountCents });

export const accountCommands = {
  OpenAccount: command(
    z.strictObject({ accountId: entityId, owner: z.string().trim().min(1).max(200) }),
    (c) => c.accountId,
  ),
  Deposit: command(z.strictObject({ accountId: entityId, amountCents }), (c) => c.accountId),
  Withdraw: command(z.strictObject({ accountId: entityId, amountCents }), (c) => c.accountId),
  DebitForTransfer: command(transferLeg.extend({ toAccountId: entityId }), (c) => c.accountId),
  CreditForTransfer: command(transferLeg.extend({ fromAccountId: entityId }), (c) => c.accountId),
  RefundTransfer: command(transferLeg.extend({ reason: z.string().min(1).max(500) }), (c) => c.accountId),
};
