/** Lambda entry: the accounts command handler (its queue → decide → the core stream). */
import { commandHandler } from "../../shared/handlers/command-handler.ts";
import { accountDecider } from "./decider.ts";

export const handler = commandHandler(accountDecider);
