/** Lambda entry: the transfers aggregate state, folded from the bus for the command handler. */
import { upcasters } from "../../events/upcasters.ts";
import { stateProjectionHandler } from "../../shared/handlers/aggregate-state.ts";
import { transferDecider } from "./decider.ts";

export const handler = stateProjectionHandler(transferDecider, { upcasters });
