/**
 * Connecting a `canon` command to the running `canon dev` of a data folder: its endpoints,
 * and the app's plan and resources (provisioning is idempotent, so this only looks them up).
 */
import { app } from "../../functions/app.ts";
import { type ProvisionedResources, provision } from "../../shared/local-cloud/provision.ts";
import { type AppPlan, planApp } from "../../shared/plan.ts";
import { useEndpoints } from "../../shared/runner/dead-letters.ts";
import { readEndpoints } from "../../shared/runner/endpoints.ts";

export interface Connection {
  readonly plan: AppPlan;
  readonly resources: ProvisionedResources;
}

export async function connect(dataDir: string): Promise<Connection> {
  useEndpoints(readEndpoints(dataDir));
  const plan = planApp(app);
  return { plan, resources: await provision(plan) };
}
