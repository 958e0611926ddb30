/**
 * The accounts service's command contract, from its Protobuf schema
 * (events/proto/canon/bank/accounts/v1/accounts.proto): the API routes `AccountsService`'s rpcs;
 * the transfer legs (`AccountTransferLegsService`) are sent by the transfers saga only.
 */

import {
  AccountsService,
  CreditForTransferSchema,
  DebitForTransferSchema,
  DepositSchema,
  OpenAccountSchema,
  RefundTransferSchema,
  WithdrawSchema,
} from "../../events/gen/canon/bank/accounts/v1/accounts_pb.ts";
import { command, rpcNames } from "../../shared/domain/commands.ts";

export const accountCommands = {
  OpenAccount: command(OpenAccountSchema, (c) => c.accountId),
  Deposit: command(DepositSchema, (c) => c.accountId),
  Withdraw: command(WithdrawSchema, (c) => c.accountId),
  DebitForTransfer: command(DebitForTransferSchema, (c) => c.accountId),
  CreditForTransfer: command(CreditForTransferSchema, (c) => c.accountId),
  RefundTransfer: command(RefundTransferSchema, (c) => c.accountId),
};

/** The commands the API accepts for accounts: one per rpc of `AccountsService`. */
export const accountApiCommands = rpcNames(AccountsService);
