/** The Transfer aggregate's event schemas (events/proto/canon/bank/transfers/v1/transfers.proto). */
import {
  TransferCompletedSchema,
  TransferDebitedSchema,
  TransferFailedSchema,
  TransferRequestedSchema,
} from "../../events/gen/canon/bank/transfers/v1/transfers_pb.ts";
import type { EventSchemas } from "../../shared/events/schemas.ts";

export const transferEventSchemas: EventSchemas = {
  TransferRequested: { schema: TransferRequestedSchema, version: 1 },
  TransferDebited: { schema: TransferDebitedSchema, version: 1 },
  TransferCompleted: { schema: TransferCompletedSchema, version: 1 },
  TransferFailed: { schema: TransferFailedSchema, version: 1 },
};
