/**
 * The transfers service's command contract, from its Protobuf schema
 * (events/proto/canon/bank/transfers/v1/transfers.proto): clients send RequestTransfer
 * (`TransfersService`); the saga sends the steps (`TransferStepsService`).
 */
import {
  CompleteTransferSchema,
  FailTransferSchema,
  MarkTransferDebitedSchema,
  RequestTransferSchema,
  TransfersService,
} from "../../events/gen/canon/bank/transfers/v1/transfers_pb.ts";
import { command, rpcNames } from "../../shared/domain/commands.ts";

export const transferCommands = {
  RequestTransfer: command(RequestTransferSchema, (c) => c.transferId),
  MarkTransferDebited: command(MarkTransferDebitedSchema, (c) => c.transferId),
  CompleteTransfer: command(CompleteTransferSchema, (c) => c.transferId),
  FailTransfer: command(FailTransferSchema, (c) => c.transferId),
};

/** The commands the API accepts for transfers: one per rpc of `TransfersService`. */
export const transferApiCommands = rpcNames(TransfersService);
