/** Lambda entry: the transfers command handler (its queue → decide → the core stream). */
import { commandHandler } from "../../shared/handlers/command-handler.ts";
import { transferCommands } from "./commands.ts";
import { transferDecider } from "./decider.ts";
import { transferEventSchemas } from "./events.ts";

export const handler = commandHandler(transferDecider, { contract: transferCommands, events: transferEventSchemas });
