/**
 * Connecting a `canon` command to the running `canon dev` of a data folder: its endpoints,
 * and the app's plan and resources (provisioning is idempotent, so this only looks them up).
 */
import { app } from "../../functions/app.ts";
import { type ProvisionedResources, provision } from "../../shared/local-cloud/provision.ts";
import { type AppPlan, planApp } from "../../shared/plan.ts";
import { masterKeyFileIn, privacyEnv } from "../../shared/privacy/env.ts";
import { useEndpoints } from "../../shared/runner/dead-letters.ts";
import { readEndpoints } from "../../shared/runner/endpoints.ts";

export interface Connection {
  readonly plan: AppPlan;
  readonly resources: ProvisionedResources;
}

export async function connect(dataDir: string): Promise<Connection> {
  const endpoints = readEndpoints(dataDir);
  useEndpoints(endpoints);
  const plan = planApp(app);
  const resources = await provision(plan);
  // Readers of the archive (sql, warm-up, rebuild) open personal data with the subject keys.
  process.env[privacyEnv.keysTable] ??= resources.subjectKeysTable;
  if (!process.env[privacyEnv.kmsKeyId]) process.env[privacyEnv.masterKeyFile] ??= masterKeyFileIn(dataDir);
  return { plan, resources };
}
