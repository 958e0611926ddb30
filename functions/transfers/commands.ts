/**
 * The transfers service's command contract. Clients send RequestTransfer; the saga sends the
 * others as the money moves.
 */
import { z } from "zod";
import { command } from "../../shared/domain/commands.ts";
import { amountCents, entityId } from "../accounts/commands.ts";

const byTransfer = z.strictObject({ transferId: entityId });

export const transferCommands = {
  RequestTransfer: command(
    z
      .strictObject({ transferId: entityId, fromAccountId: entityId, toAccountId: entityId, amountCents })
      .refine((c) => c.fromAccountId !== c.toAccountId, {
        message: "must differ from fromAccountId",
        path: ["toAccountId"],
      }),
    (c) => c.transferId,
  ),
  MarkTransferDebited: command(byTransfer, (c) => c.transferId),
  CompleteTransfer: command(byTransfer, (c) => c.transferId),
  FailTransfer: command(byTransfer.extend({ reason: z.string().min(1).max(500) }), (c) => c.transferId),
};
