/**
 * One warm-up or rebuild started from the console, in its own worker thread: the replay points
 * `CANON_TABLE` at the table it fills and imports the projection's handler, which must not
 * touch the `canon dev` process's own environment (the API's) or another replay's.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ReplayProgress } from "../archive/replay.ts";
import { destroyClients } from "../aws/clients.ts";
import { isCanonError } from "../errors.ts";
import { rebuildProjection, warmUpProjection } from "../local-cloud/projection-ops.ts";
import type { ProvisionedResources } from "../local-cloud/provision.ts";
import type { AppPlan } from "../plan.ts";
import type { AppDefinition } from "../topology.ts";
import type { ReplayAction } from "./source.ts";

export interface ReplayWorkerInput {
  readonly action: ReplayAction;
  readonly projection: string;
  readonly app: AppDefinition;
  readonly plan: AppPlan;
  readonly resources: ProvisionedResources;
  readonly repoRoot: string;
}

export type ReplayWorkerMessage =
  | { readonly kind: "status"; readonly message: string }
  | ({ readonly kind: "progress" } & ReplayProgress)
  | { readonly kind: "done"; readonly events: number; readonly seconds: number }
  | { readonly kind: "failed"; readonly message: string; readonly operator: boolean };

const input = workerData as ReplayWorkerInput;
const post = (message: ReplayWorkerMessage) => parentPort?.postMessage(message);
const run = input.action === "warm-up" ? warmUpProjection : rebuildProjection;
let lastProgress = 0;
try {
  const result = await run({
    app: input.app,
    plan: input.plan,
    resources: input.resources,
    repoRoot: input.repoRoot,
    // None here: the projection's own handler upcasts what it reads, as it does from its queue.
    upcasters: [],
    projection: input.projection,
    onStatus: (message) => post({ kind: "status", message }),
    onProgress: (p) => {
      const now = Date.now();
      if (p.bytes < p.totalBytes && now - lastProgress < 200) return;
      lastProgress = now;
      post({ kind: "progress", ...p });
    },
  });
  post({ kind: "done", events: result.events, seconds: result.seconds });
} catch (error) {
  post({ kind: "failed", message: (error as Error).message, operator: isCanonError(error, "projection_op") });
} finally {
  destroyClients();
}
