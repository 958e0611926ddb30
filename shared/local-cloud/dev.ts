/**
 * `canon dev` / `npm start`: the whole system on this machine. Starts the embedded local
 * cloud, creates the app's resources from its plan, starts every function under the local
 * runner, and serves the HTTP API. `stop()` stops everything it started.
 */
import { userInfo } from "node:os";
import { type ServerType, serve } from "@hono/node-server";
import { localSinkFunctions } from "../analytics/local-sink.ts";
import { createApi } from "../api/app.ts";
import { rpcFetch, rpcPathPattern } from "../api/rpc-app.ts";
import { destroyClients } from "../aws/clients.ts";
import { type ConsoleServer, createConsole } from "../console/server.ts";
import type { CommandSpecs } from "../domain/commands.ts";
import { type AppPlan, planApp } from "../plan.ts";
import { masterKeyFileIn, privacyEnv } from "../privacy/env.ts";
import { answerErase, eraseRoute, localEraseTargets } from "../privacy/erase-api.ts";
import { ensureMasterKeyFile } from "../privacy/key-wrapper.ts";
import { describeEndpoints, removeEndpoints, writeEndpoints } from "../runner/endpoints.ts";
import { type Runner, startRunner } from "../runner/runner.ts";
import { telemetry } from "../telemetry/emitter.ts";
import type { AppDefinition } from "../topology.ts";
import { type LocalCloud, startLocalCloud } from "./cloud.ts";
import { ensureControlTable, viewTable } from "./control.ts";
import { type ProvisionedResources, provision, resolveEnv } from "./provision.ts";
import { type RpcServer, serveRpcBeside } from "./rpc-server.ts";

export interface DevOptions {
  readonly app: AppDefinition;
  readonly contracts: Readonly<Record<string, CommandSpecs>>;
  readonly repoRoot: string;
  readonly dataDir: string;
  readonly port: number;
  /**
   * Port of the native gRPC server (HTTP/2 cleartext, which also speaks gRPC-Web and Connect).
   * @default `port` + 1, or any free port when `port` is 0 or `port` + 1 is taken
   */
  readonly grpcPort?: number;
  readonly host?: string;
  /** Seconds before a failed queue message is retried locally. @default 1 */
  readonly retryDelaySeconds?: number;
  /** Use endpoints already in the environment (LocalStack) instead of starting emulators. */
  readonly external?: boolean;
  /** Start the operator console's bus reader and charts at once (else on its first request). @default false */
  readonly consoleEager?: boolean;
}

export interface DevSystem {
  readonly url: string;
  /** The native gRPC server: `host:port` (HTTP/2 with prior knowledge, no TLS). */
  readonly grpcAddress: string;
  readonly cloud: LocalCloud | undefined;
  readonly plan: AppPlan;
  readonly resources: ProvisionedResources;
  readonly runner: Runner;
  stop(): Promise<void>;
}

/** Starts the local system; resolves when the API answers /health with 200. */
export async function startDev(options: DevOptions): Promise<DevSystem> {
  let ready = false;
  const cloud = options.external ? undefined : await startLocalCloud({ dataDir: options.dataDir });
  let runner: Runner | undefined;
  let server: ServerType | undefined;
  let grpc: RpcServer | undefined;
  let operatorConsole: ConsoleServer | undefined;
  const stop = async () => {
    ready = false;
    removeEndpoints(options.dataDir);
    await operatorConsole?.stop();
    await grpc?.close();
    if (server) await new Promise<void>((resolve) => server?.close(() => resolve()));
    // The API's telemetry still buffered goes out while the stream is there.
    await telemetry().flush();
    await runner?.stop();
    destroyClients();
    await cloud?.stop();
  };
  try {
    if (cloud) Object.assign(process.env, cloud.env);
    // Outside the embedded cloud (LocalStack), data keys are wrapped by a master key kept in the
    // data folder, unless a KMS key is named (docs/privacy.md).
    if (!cloud && !process.env[privacyEnv.kmsKeyId])
      process.env[privacyEnv.masterKeyFile] ??= ensureMasterKeyFile(masterKeyFileIn(options.dataDir));
    const plan = planApp(options.app);
    const resources = await provision(plan);
    await ensureControlTable(plan.prefix);
    runner = await startRunner({
      // With the telemetry bus's local sink, which plays its delivery stream (not a planned function).
      plan: { ...plan, functions: [...plan.functions, ...localSinkFunctions(plan)] },
      resources,
      steer: true,
      baseEnv: cloud?.env ?? {},
      repoRoot: options.repoRoot,
      retryDelaySeconds: options.retryDelaySeconds,
    });
    const apiFunction = plan.functions.find((fn) => fn.role === "api");
    if (apiFunction) Object.assign(process.env, resolveEnv(apiFunction, resources));
    const apiOptions = {
      app: options.app,
      contracts: options.contracts,
      isReady: () => ready,
      viewTable: cachedViewTables(plan.prefix),
    };
    // The JSON API and, beside it, Connect and gRPC-Web (two functions on AWS, one port here).
    const api = createApi(apiOptions);
    const rpc = rpcFetch(apiOptions);
    api.post(rpcPathPattern, (c) => rpc(c.req.raw));
    // The operator's erase route (docs/privacy.md); on AWS an IAM-authorised function of its own.
    const eraseTargets = localEraseTargets(plan, resources, [...new Set(options.app.services.map((s) => s.bus))]);
    api.post(eraseRoute, async (c) => {
      const answer = await answerErase({
        subject: c.req.param("subject"),
        body: await c.req.text(),
        by: c.req.header("x-canon-operator") ?? `local:${userInfo().username}`,
        keysTable: resources.subjectKeysTable ?? "",
        buses: eraseTargets,
      });
      return c.json(answer.body, answer.status);
    });
    // The operator console at `/` and `/_canon/` (shared/console), only here, not on AWS's API.
    operatorConsole = createConsole({
      app: options.app,
      plan,
      resources,
      runningFunctions: () => runner?.functions ?? [],
      repoRoot: options.repoRoot,
      embedded: cloud !== undefined,
      eager: options.consoleEager,
    });
    const host = options.host ?? "127.0.0.1";
    const port = await new Promise<number>((resolve, reject) => {
      const fetch = operatorConsole?.wrap(api.fetch) ?? api.fetch;
      server = serve({ fetch, hostname: host, port: options.port }, (info) => resolve(info.port));
      server.once("error", reject);
    });
    grpc = await serveRpcBeside(apiOptions, host, port, options.grpcPort);
    ready = true;
    const started = runner;
    const url = `http://${host}:${port}`;
    // For other `canon` commands (e.g. `canon dlq`): where this system is; removed on stop.
    const env = { ...process.env, ...cloud?.env };
    writeEndpoints(
      options.dataDir,
      describeEndpoints({ plan, resources, api: url, embedded: cloud !== undefined, env }),
    );
    return { url, grpcAddress: `${host}:${grpc.port}`, cloud, plan, resources, runner: started, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Views moved by a rebuild, read from the control table at most once a second per view. */
function cachedViewTables(
  prefix: string,
): (service: string, view: string, planned: string) => Promise<string | undefined> {
  const cache = new Map<string, { table: string | undefined; until: number }>();
  return async (service, view, planned) => {
    const key = `${service}/${view}`;
    const hit = cache.get(key);
    if (hit !== undefined && hit.until > Date.now()) return hit.table;
    const table = (await viewTable(prefix, key, planned))?.table;
    cache.set(key, { table, until: Date.now() + 1_000 });
    return table;
  };
}
