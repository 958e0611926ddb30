import type { ServiceDefinition } from "../../shared/topology.ts";
import { accountEventTypes } from "./decider.ts";

/**
 * The accounts service: opens accounts and moves money in and out of them. The API takes
 * the public commands; the transfer legs come from the transfers saga.
 */
export const accountsService: ServiceDefinition = {
  name: "accounts",
  bus: "core",
  aggregateType: "Account",
  commandHandler: "functions/accounts/command-handler.ts",
  commands: ["OpenAccount", "Deposit", "Withdraw"],
  events: accountEventTypes,
  stateProjection: "functions/accounts/state-projection.ts",
  projections: [
    {
      name: "balances",
      handler: "functions/accounts/balances-projection.ts",
      events: accountEventTypes,
      key: "accountId",
    },
  ],
  reactors: [],
};
