/**
 * The transfers service's commands and events: the messages of
 * events/proto/canon/bank/transfers/v1/transfers.proto. Clients send RequestTransfer
 * (`TransfersService`); the saga sends the steps (`TransferStepsService`).
 */
import * as proto from "../../events/gen/canon/bank/transfers/v1/transfers_pb.ts";
import { contract } from "../../shared/domain/proto-contract.ts";

export const transferContract = contract(proto, { type: "Transfer", id: "transferId", api: proto.TransfersService });
