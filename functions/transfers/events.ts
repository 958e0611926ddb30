/** The Transfer aggregate's event schemas (events/proto/canon/bank/transfers/v1/transfers.proto). */
import {
  TransferCompletedSchema,
  TransferDebitedSchema,
  TransferFailedSchema,
  TransferRequestedSchema,
} from "../../events/gen/canon/bank/transfers/v1/transfers_pb.ts";
import type { EventOf, EventSchemas } from "../../shared/events/schemas.ts";

export const transferEventSchemas = {
  TransferRequested: { schema: TransferRequestedSchema, version: 1 },
  TransferDebited: { schema: TransferDebitedSchema, version: 1 },
  TransferCompleted: { schema: TransferCompletedSchema, version: 1 },
  TransferFailed: { schema: TransferFailedSchema, version: 1 },
} satisfies EventSchemas;

/** The Transfer aggregate's events, as its decider emits and folds them. */
export type TransferEvent = EventOf<typeof transferEventSchemas>;
