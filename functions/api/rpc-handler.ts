/** Lambda entry: the API's Connect and gRPC-Web routes behind API Gateway (shared/api/rpc-app.ts). */
import { handle } from "hono/aws-lambda";
import { rpcFetch } from "../../shared/api/rpc-app.ts";
import { contractsOf } from "../../shared/domain/commands.ts";
import { app } from "../app.ts";

// Hono's adapter turns API Gateway's events into fetch requests; it needs only a `fetch`.
export const handler = handle({ fetch: rpcFetch({ app, contracts: contractsOf(app) }) } as unknown as Parameters<
  typeof handle
>[0]);
