import { service } from "../../shared/service.ts";
import { transferContract } from "./contract.ts";
import { transferDecider } from "./decider.ts";
import { saga } from "./saga-reactor.ts";
import { transfers } from "./transfers-projection.ts";

/**
 * The transfers service: moves money between accounts with a saga. Clients send
 * RequestTransfer; the saga reactor sends the legs to accounts and the steps back here.
 */
export const transfersService = service({
  name: "transfers",
  bus: "core",
  contract: transferContract,
  decider: transferDecider,
  projections: [transfers],
  reactors: [saga],
});
