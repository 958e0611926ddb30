/** Lambda entry: the transfers command handler (its queue → decide → the core stream). */
import { commandHandler } from "../../shared/handlers/command-handler.ts";
import { transferDecider } from "./decider.ts";

export const handler = commandHandler(transferDecider);
