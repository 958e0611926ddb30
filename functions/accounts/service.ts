import type { ServiceDefinition } from "../../shared/topology.ts";
import { accountApiCommands, accountCommands } from "./commands.ts";
import { type AccountEvent, accountEventTypes, movementEventTypes } from "./decider.ts";

/**
 * The accounts service: opens accounts and moves money in and out of them. The API takes
 * the public commands; the transfer legs come from the transfers saga.
 */
export const accountsService: ServiceDefinition = {
  name: "accounts",
  bus: "core",
  aggregateType: "Account",
  commandHandler: "functions/accounts/command-handler.ts",
  contract: accountCommands,
  commands: accountApiCommands,
  events: accountEventTypes,
  stateProjection: "functions/accounts/state-projection.ts",
  projections: [
    {
      name: "balances",
      handler: "functions/accounts/balances-projection.ts",
      events: accountEventTypes,
      key: "accountId",
    },
    {
      // Totals per UTC day, fed by every account: exact under duplicates (counter projection).
      name: "daily-totals",
      handler: "functions/accounts/daily-totals-projection.ts",
      events: ["FundsDeposited", "FundsWithdrawn"] satisfies AccountEvent["type"][],
      key: "date",
    },
    {
      // Added "later": grown from the archive before it joins (docs/add-a-projection.md).
      name: "activity",
      handler: "functions/accounts/activity-projection.ts",
      events: movementEventTypes,
      key: "accountId",
      warmUp: true,
    },
  ],
  reactors: [],
};
