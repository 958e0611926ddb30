/** The Account aggregate's event schemas (events/proto/canon/bank/accounts/v1/accounts.proto). */
import {
  AccountOpenedSchema,
  FundsCreditedForTransferSchema,
  FundsDebitedForTransferSchema,
  FundsDepositedSchema,
  FundsRefundedForTransferSchema,
  FundsWithdrawnSchema,
} from "../../events/gen/canon/bank/accounts/v1/accounts_pb.ts";
import type { EventOf, EventSchemas } from "../../shared/events/schemas.ts";

export const accountEventSchemas = {
  // Version 2 renamed owner_name to owner; events/upcasters.ts reads version 1.
  AccountOpened: { schema: AccountOpenedSchema, version: 2 },
  FundsDeposited: { schema: FundsDepositedSchema, version: 1 },
  FundsWithdrawn: { schema: FundsWithdrawnSchema, version: 1 },
  FundsDebitedForTransfer: { schema: FundsDebitedForTransferSchema, version: 1 },
  FundsCreditedForTransfer: { schema: FundsCreditedForTransferSchema, version: 1 },
  FundsRefundedForTransfer: { schema: FundsRefundedForTransferSchema, version: 1 },
} satisfies EventSchemas;

/** The Account aggregate's events, as its decider emits and folds them. */
export type AccountEvent = EventOf<typeof accountEventSchemas>;
