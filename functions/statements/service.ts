import type { ServiceDefinition } from "../../shared/topology.ts";
import type { AccountEvent } from "../accounts/decider.ts";

/** The money-moving account events a statement lists. */
export const statementEventTypes: readonly AccountEvent["type"][] = [
  "FundsDeposited",
  "FundsWithdrawn",
  "FundsDebitedForTransfer",
  "FundsCreditedForTransfer",
  "FundsRefundedForTransfer",
];

/** The statements service: projection only, each account's history of money movements. */
export const statementsService: ServiceDefinition = {
  name: "statements",
  bus: "core",
  projections: [
    {
      name: "history",
      handler: "functions/statements/history-projection.ts",
      events: statementEventTypes,
      key: "accountId",
    },
  ],
  reactors: [],
};
