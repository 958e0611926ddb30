/** Lambda entry: the HTTP API behind API Gateway (the same Hono app as `npm start`). */
import { handle } from "hono/aws-lambda";
import { createApi } from "../../shared/api/app.ts";
import { contractsOf } from "../../shared/domain/commands.ts";
import { app } from "../app.ts";

export const handler = handle(createApi({ app, contracts: contractsOf(app) }));
