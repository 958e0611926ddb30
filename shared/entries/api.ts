/**
 * The API's Lambda entries (the JSON API, and its Connect and gRPC-Web routes), built from the
 * app's services as the plan lists them and their contracts (functions/<service>/contract.ts):
 * nothing else of the app (deciders, projections, reactors) is in their bundles.
 */
import { handle } from "hono/aws-lambda";
import { createApi } from "../api/app.ts";
import type { CommandSpecs } from "../domain/commands.ts";
import type { Contract } from "../domain/proto-contract.ts";
import type { AppDefinition } from "../topology.ts";

export { findContract } from "./find.ts";

const specs = (contracts: Readonly<Record<string, Contract>>) => {
  const found: Record<string, CommandSpecs> = {};
  for (const [service, contract] of Object.entries(contracts)) found[service] = contract.commands;
  return found;
};

/** The JSON API behind API Gateway (the same Hono app as `npm start`). */
export function apiLambda(app: AppDefinition, contracts: Readonly<Record<string, Contract>>) {
  return handle(createApi({ app, contracts: specs(contracts) }));
}
