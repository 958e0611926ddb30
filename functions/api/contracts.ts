/** Every service's command contract, by service name: what the API validates against. */
import type { CommandSpecs } from "../../shared/domain/commands.ts";
import { accountCommands } from "../accounts/commands.ts";
import { transferCommands } from "../transfers/commands.ts";

export const contracts: Record<string, CommandSpecs> = {
  accounts: accountCommands,
  transfers: transferCommands,
};
