import { service } from "../../shared/service.ts";
import { activity } from "./activity-projection.ts";
import { balances } from "./balances-projection.ts";
import { accountContract } from "./contract.ts";
import { dailyTotals } from "./daily-totals-projection.ts";
import { accountDecider } from "./decider.ts";

/**
 * The accounts service: opens accounts and moves money in and out of them. The API takes
 * the public commands; the transfer legs come from the transfers saga.
 */
export const accountsService = service({
  name: "accounts",
  bus: "core",
  contract: accountContract,
  decider: accountDecider,
  projections: [balances, dailyTotals, activity],
});
