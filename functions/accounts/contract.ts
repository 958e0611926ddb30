/**
 * The accounts service's commands and events: the messages of
 * events/proto/canon/bank/accounts/v1/accounts.proto. The API routes `AccountsService`'s rpcs;
 * the transfer legs (`AccountTransferLegsService`) are sent by the transfers saga only.
 */
import * as proto from "../../events/gen/canon/bank/accounts/v1/accounts_pb.ts";
import { contract } from "../../shared/domain/proto-contract.ts";

export const accountContract = contract(proto, {
  type: "Account",
  id: "accountId",
  api: proto.AccountsService,
  // Version 2 renamed owner_name to owner; events/upcasters.ts reads version 1.
  versions: { AccountOpened: 2 },
});
