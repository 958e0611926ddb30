/** Lambda entry: the accounts command handler (its queue → decide → the core stream). */
import { commandHandler } from "../../shared/handlers/command-handler.ts";
import { accountCommands } from "./commands.ts";
import { accountDecider } from "./decider.ts";
import { accountEventSchemas } from "./events.ts";

export const handler = commandHandler(accountDecider, { contract: accountCommands, events: accountEventSchemas });
