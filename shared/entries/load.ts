/**
 * A planned function's Lambda handler, loaded in this process as Lambda would run it (the local
 * runner's workers, tests): the `handlerExport` of its module, or, for a declared part, the
 * handler the framework builds from it, as its generated entry does (shared/entries/source.ts).
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { PlannedFunction } from "../plan.ts";

type Module = Readonly<Record<string, unknown>>;

const load = (repoRoot: string, path: string) => import(pathToFileURL(resolve(repoRoot, path)).href) as Promise<Module>;

/** The function's handler (its `handlerExport`, `handler` by default); paths resolve from `repoRoot`. */
export async function loadHandler(
  repoRoot: string,
  fn: Pick<PlannedFunction, "handler" | "handlerExport" | "entry">,
): Promise<unknown> {
  const module = await load(repoRoot, fn.handler);
  const entry = fn.entry;
  const contracts = async () => {
    const { findContract } = await import("./find.ts");
    const found: Record<string, ReturnType<typeof findContract>> = {};
    for (const [service, path] of Object.entries(entry?.targets ?? {})) {
      found[service] = findContract(await load(repoRoot, path), path);
    }
    return found;
  };
  if (entry === undefined) {
    const name = fn.handlerExport ?? "handler";
    if (typeof module[name] !== "function") throw new Error(`${fn.handler} has no exported "${name}" function`);
    return module[name];
  }
  const where = fn.handler;
  switch (entry.kind) {
    case "command-handler": {
      const { commandLambda, findContract, findDecider } = await import("./command-side.ts");
      const contract = entry.contract ?? "";
      return commandLambda(findContract(await load(repoRoot, contract), contract), findDecider(module, where));
    }
    case "state": {
      const { stateLambda, findDecider } = await import("./state.ts");
      return stateLambda(findDecider(module, where), entry.service);
    }
    case "projection":
    case "replayer": {
      const { projectionLambda, replayLambda, findProjection } = await import("./projection.ts");
      const handler = projectionLambda(entry.service, findProjection(module, entry.name ?? "", where));
      return entry.kind === "replayer" && fn.handlerExport === "replay" ? replayLambda(handler) : handler;
    }
    case "reactor": {
      const { reactorLambda, findReactor } = await import("./reactor.ts");
      return reactorLambda(entry.service, findReactor(module, entry.name ?? "", where), await contracts());
    }
    case "relay":
      return module.relayHandler;
    case "archiver":
      return module.archiverHandler;
    case "api":
    case "rpc": {
      const build = entry.kind === "api" ? module.apiLambda : module.rpcLambda;
      if (entry.app === undefined || typeof build !== "function") throw new Error(`${where}: no ${entry.kind} entry`);
      return build(entry.app, await contracts());
    }
  }
}
