/**
 * What the local and the AWS console sources build the same way from the plan and from what
 * they read: a function's description, a bus's archive view, the services' outcome tables,
 * the tail's recent events, a redrive with its refusals as console errors, and the check
 * that a replay names a declared projection.
 */
import type { ShardManifest } from "../archive/layout.ts";
import { isCanonError } from "../errors.ts";
import { ids, type PlannedFunction, plannedProjectionNames } from "../plan.ts";
import { type RedriveOutcome, redrive } from "../runner/dead-letters.ts";
import type { LocalEndpoints } from "../runner/endpoints.ts";
import { type MoveOutcome, moveDeadLetters } from "../runner/move-dead-letters.ts";
import type { AppDefinition } from "../topology.ts";
import type { BusWatch } from "./bus-watch.ts";
import {
  type ArchiveView,
  ConsoleRequestError,
  type FunctionView,
  matchesFilter,
  type ReaderLag,
  type TailEvent,
  type TailFilter,
} from "./source.ts";

/** A planned function as the functions panel names it, without its status. */
export function describeFunction(fn: PlannedFunction): Omit<FunctionView, "status" | "table"> {
  return {
    id: fn.id,
    role: fn.role,
    owner: fn.owner.kind === "api" ? "api" : `${fn.owner.kind} ${fn.owner.name}`,
    source:
      fn.source.kind === "sqs"
        ? `queue ${fn.source.queueId}`
        : fn.source.kind === "kinesis"
          ? `stream ${fn.source.bus}`
          : fn.source.kind,
    handler: fn.handlerExport ? `${fn.handler}#${fn.handlerExport}` : fn.handler,
  };
}

/**
 * A bus's archive from its manifests: per shard (those with a manifest and those the console's
 * reader knows) the watermark, counts and `lag` behind the stream.
 */
export function archiveView(
  bus: string,
  bucket: string,
  manifests: readonly ShardManifest[],
  shardsOnStream: readonly string[],
  lag: (shardId: string, watermark: string | undefined) => ReaderLag,
): ArchiveView {
  const shardIds = new Set([...manifests.map((m) => m.shardId), ...shardsOnStream]);
  const shards = [...shardIds].sort().map((shardId) => {
    const manifest = manifests.find((m) => m.shardId === shardId);
    return {
      shardId,
      ...(manifest ? { watermark: manifest.lastSequenceNumber, updatedAt: manifest.updatedAt } : {}),
      objects: manifest?.objects ?? 0,
      records: manifest?.records ?? 0,
      lag: lag(shardId, manifest?.lastSequenceNumber),
    };
  });
  return {
    bus,
    bucket,
    objects: shards.reduce((sum, s) => sum + s.objects, 0),
    records: shards.reduce((sum, s) => sum + s.records, 0),
    shards,
  };
}

/** Each service with a command handler → its outcomes table (for the recent commands). */
export function outcomeTables(
  app: AppDefinition,
  tableNames: ReadonlyMap<string, string>,
): ReadonlyMap<string, string> {
  return new Map(
    app.services.flatMap((s) => {
      const table = tableNames.get(ids.outcomesTable(s.name));
      return s.commandHandler !== undefined && table !== undefined ? [[s.name, table] as const] : [];
    }),
  );
}

/** The newest `limit` events the reader holds that pass `filter`, oldest first. */
export function recentMatching(watch: BusWatch, filter: TailFilter, limit: number): readonly TailEvent[] {
  const matching = watch.recent().filter((event) => matchesFilter(event, filter));
  return matching.slice(Math.max(0, matching.length - limit));
}

/** `canon dlq redrive` for the console: an unknown projection is a 404, a refused redrive a 409. */
export async function redriveForConsole(
  endpoints: LocalEndpoints,
  projection: string,
  aggregate: string,
  options: { readonly skip?: string; readonly timeoutMs: number },
): Promise<RedriveOutcome> {
  if (!endpoints.projections.some((p) => p.name === projection)) {
    throw new ConsoleRequestError(`unknown projection "${projection}"`, 404);
  }
  try {
    return await redrive(endpoints, projection, aggregate, options);
  } catch (error) {
    if (isCanonError(error, "redrive_refused")) {
      throw new ConsoleRequestError(error.message, 409);
    }
    throw error;
  }
}

/**
 * The projections an app declares (`<service>.<projection>`, and a generation being built:
 * `<service>.<projection>-g2`): the only ones a console warms up or rebuilds.
 */
export function declaredProjections(app: AppDefinition): ReadonlySet<string> {
  return new Set(plannedProjectionNames(app));
}

/** Refuses (404) a replay of a projection the app does not declare. */
export function requireDeclared(declared: ReadonlySet<string>, projection: string): void {
  if (!declared.has(projection)) {
    throw new ConsoleRequestError(`unknown projection "${projection}" (known: ${[...declared].join(", ")})`, 404);
  }
}

/** `canon dlq move` for the console: an unknown queue is a 404, a refused move a 409. */
export async function moveForConsole(endpoints: LocalEndpoints, queueId: string): Promise<MoveOutcome> {
  if (!endpoints.queues.some((q) => q.id === queueId)) {
    throw new ConsoleRequestError(`unknown queue "${queueId}"`, 404);
  }
  try {
    return await moveDeadLetters(endpoints, queueId);
  } catch (error) {
    if (isCanonError(error, "redrive_refused")) {
      throw new ConsoleRequestError(error.message, 409);
    }
    throw error;
  }
}
