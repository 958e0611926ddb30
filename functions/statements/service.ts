import { service } from "../../shared/service.ts";
import { history } from "./history-projection.ts";

/** The statements service: projection only, each account's history of money movements. */
export const statementsService = service({ name: "statements", bus: "core", projections: [history] });
