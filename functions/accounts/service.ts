import type { ServiceDefinition } from "../../shared/topology.ts";

/** The accounts service: opens accounts and moves money in and out of them. */
export const accountsService: ServiceDefinition = {
  name: "accounts",
  bus: "core",
  aggregateType: "Account",
  commandHandler: "functions/accounts/command-handler.ts",
  commands: ["OpenAccount", "Deposit", "Withdraw"],
  events: ["AccountOpened", "FundsDeposited", "FundsWithdrawn"],
  stateProjection: "functions/accounts/state-projection.ts",
  projections: [
    {
      name: "balances",
      handler: "functions/accounts/balances-projection.ts",
      events: ["AccountOpened", "FundsDeposited", "FundsWithdrawn"],
      key: "accountId",
    },
  ],
  reactors: [],
};
