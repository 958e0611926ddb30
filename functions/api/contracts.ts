/**
 * Every service's command contract, by service name, found from the services' declarations
 * (`contract` in functions/<service>/service.ts). Kept for the bench's imports; code of the kit
 * itself asks `contractsOf(app)`.
 */
import { contractsOf } from "../../shared/domain/commands.ts";
import { app } from "../app.ts";

export const contracts = contractsOf(app);
