/**
 * Growing and regrowing projections from the archive, locally (laws G, H, I):
 *
 * - warm-up: a projection declared with `warmUp: true` has its queue subscribed (it buffers)
 *   but no consumer. Replay the archive until it has passed the moment of subscription, then
 *   attach the consumer, which drains the buffer; the overlap is absorbed by idempotency.
 * - rebuild (blue/green): a new table beside the old one; the consumer moves to it, the archive
 *   is replayed into it past that moment, then reads switch to it and the old table is retired.
 *   The old table answers reads throughout (falling behind only while the new one catches up).
 */

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSHandler } from "aws-lambda";
import { type ReplayProgress, replayIntoProjection } from "../archive/replay.ts";
import { archivePassed } from "../archive/watermark.ts";
import type { Upcaster } from "../events/upcast.ts";
import { type AppPlan, envNames, type PlannedFunction } from "../plan.ts";
import type { AppDefinition, ProjectionDefinition } from "../topology.ts";
import {
  attachedFunctions,
  consumerTable,
  isRunning,
  markAttached,
  setConsumerTable,
  setViewTable,
  viewTable,
} from "./control.ts";
import type { ProvisionedResources } from "./provision.ts";

export interface ProjectionOpsOptions {
  readonly app: AppDefinition;
  readonly plan: AppPlan;
  readonly resources: ProvisionedResources;
  readonly repoRoot: string;
  readonly upcasters: readonly Upcaster[];
  /** `<service>.<projection>`, e.g. `accounts.activity`. */
  readonly projection: string;
  readonly onStatus?: (message: string) => void;
  readonly onProgress?: (progress: ReplayProgress) => void;
  /** How long to wait for the archive to pass the handover point. @default 120000 */
  readonly archiveWaitMs?: number;
  /** How long to wait for the running `canon dev` to act on a control change. @default 30000 */
  readonly runnerWaitMs?: number;
}

interface Target {
  readonly service: string;
  readonly definition: ProjectionDefinition;
  readonly consumer: PlannedFunction;
  readonly bus: string;
  readonly table: string;
}

/** Thrown for an operator mistake (unknown projection, wrong state): the CLI prints it and exits 2. */
export class ProjectionOpError extends Error {
  override name = "ProjectionOpError";
}

function find(options: ProjectionOpsOptions): Target {
  const [serviceName, projectionName] = options.projection.split(".");
  const service = options.app.services.find((s) => s.name === serviceName);
  const definition = service?.projections.find((p) => p.name === projectionName);
  const consumer = options.plan.functions.find(
    (f) => f.id === `${serviceName}-${projectionName}` && f.role === "projection",
  );
  if (service === undefined || definition === undefined || consumer === undefined) {
    const known = options.app.services.flatMap((s) => s.projections.map((p) => `${s.name}.${p.name}`));
    throw new ProjectionOpError(`unknown projection "${options.projection}"; known: ${known.join(", ")}`);
  }
  const ref = consumer.env[envNames.table];
  const table = ref?.kind === "table" ? options.resources.tableNames.get(ref.id) : undefined;
  if (table === undefined) throw new ProjectionOpError(`${options.projection} has no table`);
  return { service: service.name, definition, consumer, bus: service.bus, table };
}

/** Warms a detached projection up from the archive and attaches its consumer. */
export async function warmUpProjection(options: ProjectionOpsOptions): Promise<{ events: number; seconds: number }> {
  const target = find(options);
  if (!target.consumer.startsDetached) {
    throw new ProjectionOpError(
      `${options.projection} is live from the start; declare it with warmUp: true to warm it up`,
    );
  }
  const prefix = options.plan.prefix;
  if ((await attachedFunctions(prefix)).includes(target.consumer.id)) {
    throw new ProjectionOpError(`${options.projection} is already warmed up and attached`);
  }
  // Its queue was subscribed when `canon dev` provisioned it: from now on every event is buffered.
  const subscribedAt = new Date();
  options.onStatus?.(`subscribed; buffering since ${subscribedAt.toISOString()}`);
  await waitForArchive(options, target.bus, subscribedAt);
  const result = await replay(options, target, target.table);
  await markAttached(prefix, target.consumer.id);
  await waitUntil(
    options.runnerWaitMs ?? 30_000,
    async () => ((await isRunning(prefix, target.consumer.id)) ? true : undefined),
    "canon dev to attach the consumer (is it running?)",
  );
  options.onStatus?.("replay done; consumer attached, draining the buffer");
  return result;
}

/** Rebuilds a projection blue/green: a new table, filled from the archive, then reads switch to it. */
export async function rebuildProjection(
  options: ProjectionOpsOptions,
): Promise<{ events: number; seconds: number; table: string }> {
  const target = find(options);
  const prefix = options.plan.prefix;
  const view = `${target.service}/${target.definition.name}`;
  const current = await viewTable(prefix, view);
  const blue = current?.table ?? target.table;
  const generation = (current?.generation ?? 1) + 1;
  const green = `${target.table}-g${generation}`;
  await createTable(green);
  options.onStatus?.(`created ${green} beside ${blue}`);

  await setConsumerTable(prefix, target.consumer.id, green);
  await waitUntil(
    options.runnerWaitMs ?? 30_000,
    async () => {
      const state = await consumerTable(prefix, target.consumer.id);
      return state?.table === green && state.applied ? true : undefined;
    },
    "canon dev to move the consumer to the new table (is it running?)",
  );
  const movedAt = new Date();
  options.onStatus?.(`consumer writes ${green}; ${blue} still answers reads`);
  await waitForArchive(options, target.bus, movedAt);
  const result = await replay(options, target, green);

  await setViewTable(prefix, view, green, generation);
  options.onStatus?.(`reads switched to ${green}`);
  // Readers cache the view's table briefly: retire the old one after they have moved on.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  await deleteTable(blue);
  options.onStatus?.(`retired ${blue}`);
  return { ...result, table: green };
}

async function waitForArchive(options: ProjectionOpsOptions, bus: string, moment: Date): Promise<void> {
  const bucket = options.resources.archiveBuckets.get(bus);
  const streamName = options.resources.streamNames.get(bus);
  if (bucket === undefined || streamName === undefined) throw new ProjectionOpError(`bus ${bus} has no archive`);
  await waitUntil(
    options.archiveWaitMs ?? 120_000,
    async () => {
      const state = await archivePassed({ bucket, bus, streamName, moment });
      if (!state.passed)
        options.onStatus?.(
          `waiting for the archive to pass ${moment.toISOString()} (shards ${state.waitingOn.join(", ")})`,
        );
      return state.passed ? true : undefined;
    },
    "the archive to pass the handover point",
  );
}

async function replay(
  options: ProjectionOpsOptions,
  target: Target,
  table: string,
): Promise<{ events: number; seconds: number }> {
  const bucket = options.resources.archiveBuckets.get(target.bus) as string;
  process.env[envNames.table] = table;
  const module = (await import(pathToFileURL(join(options.repoRoot, target.definition.handler)).href)) as {
    handler?: SQSHandler;
  };
  if (typeof module.handler !== "function")
    throw new ProjectionOpError(`${target.definition.handler} exports no handler`);
  return replayIntoProjection({
    bucket,
    bus: target.bus,
    handler: module.handler,
    name: options.projection,
    eventTypes: target.definition.events,
    upcasters: options.upcasters,
    onProgress: options.onProgress,
  });
}

async function waitUntil<T>(
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  what: string,
): Promise<T | undefined> {
  if (what === "") return undefined;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new ProjectionOpError(`timed out waiting for ${what}`);
}

async function createTable(name: string): Promise<void> {
  const dynamo = new DynamoDBClient({ region: process.env.AWS_REGION ?? "us-east-1" });
  try {
    await dynamo.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      }),
    );
  } finally {
    dynamo.destroy();
  }
}

async function deleteTable(name: string): Promise<void> {
  const dynamo = new DynamoDBClient({ region: process.env.AWS_REGION ?? "us-east-1" });
  try {
    await dynamo.send(new DeleteTableCommand({ TableName: name }));
  } finally {
    dynamo.destroy();
  }
}
