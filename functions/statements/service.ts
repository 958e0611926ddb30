import type { ServiceDefinition } from "../../shared/topology.ts";
import { movementEventTypes } from "../accounts/decider.ts";

/** The statements service: projection only, each account's history of money movements. */
export const statementsService: ServiceDefinition = {
  name: "statements",
  bus: "core",
  projections: [
    {
      name: "history",
      handler: "functions/statements/history-projection.ts",
      // The money-moving account events a statement lists.
      events: movementEventTypes,
      key: "accountId",
    },
  ],
  reactors: [],
};
