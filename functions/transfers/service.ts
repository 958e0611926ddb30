import type { ServiceDefinition } from "../../shared/topology.ts";
import { transferApiCommands, transferCommands } from "./commands.ts";
import { transferEventTypes } from "./decider.ts";
import type { SagaEvent } from "./saga-reactor.ts";

/**
 * The transfers service: moves money between accounts with a saga. Clients send
 * RequestTransfer; the saga reactor sends the legs to accounts and the steps back here.
 */
export const transfersService: ServiceDefinition = {
  name: "transfers",
  bus: "core",
  aggregateType: "Transfer",
  commandHandler: "functions/transfers/command-handler.ts",
  contract: transferCommands,
  commands: transferApiCommands,
  events: transferEventTypes,
  stateProjection: "functions/transfers/state-projection.ts",
  projections: [
    {
      name: "transfers",
      handler: "functions/transfers/transfers-projection.ts",
      events: transferEventTypes,
      key: "transferId",
    },
  ],
  reactors: [
    {
      name: "saga",
      handler: "functions/transfers/saga-reactor.ts",
      events: [
        "TransferRequested",
        "FundsDebitedForTransfer",
        "FundsCreditedForTransfer",
        "FundsRefundedForTransfer",
        "CommandRejected",
      ] satisfies SagaEvent["type"][],
      sendsTo: ["accounts", "transfers"],
    },
  ],
};
