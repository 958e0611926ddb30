/** The API's Connect and gRPC-Web routes behind API Gateway (shared/api/rpc-app.ts), as api.ts builds the JSON API. */
import { handle } from "hono/aws-lambda";
import { rpcFetch } from "../api/rpc-app.ts";
import type { CommandSpecs } from "../domain/commands.ts";
import type { Contract } from "../domain/proto-contract.ts";
import type { AppDefinition } from "../topology.ts";

export { findContract } from "./find.ts";

/** The rpc function's handler: Hono's adapter turns API Gateway's events into fetch requests. */
export function rpcLambda(app: AppDefinition, contracts: Readonly<Record<string, Contract>>) {
  const found: Record<string, CommandSpecs> = {};
  for (const [service, contract] of Object.entries(contracts)) found[service] = contract.commands;
  return handle({ fetch: rpcFetch({ app, contracts: found }) } as unknown as Parameters<typeof handle>[0]);
}
