/** Lambda entry: the HTTP API behind API Gateway (the same Hono app as `npm start`). */
import { handle } from "hono/aws-lambda";
import { createApi } from "../../shared/api/app.ts";
import { app } from "../app.ts";
import { contracts } from "./contracts.ts";

export const handler = handle(createApi({ app, contracts }));
