/**
 * Where a running `canon dev` can be reached: `<data-dir>/endpoints.json`, written once the
 * system is ready and removed when it stops, so other `canon` commands (e.g. `canon dlq`) find
 * the local cloud's endpoints and the app's projections, tables and queues. It holds no
 * credentials: the embedded emulators take any, and an external target uses the caller's own.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ProvisionedResources } from "../local-cloud/provision.ts";
import { type AppPlan, envNames } from "../plan.ts";

export interface ProjectionEndpoint {
  /** `<service>.<projection>` (`<service>.state` for a service's own state projection). */
  readonly name: string;
  readonly functionId: string;
  /** The planned table; a blue/green rebuild may have moved the consumer (see dead-letters.ts). */
  readonly table: string;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
}

export interface QueueEndpoint {
  readonly id: string;
  readonly url: string;
  readonly deadLetterQueueUrl: string;
  /** A failure destination itself (a relay's dead-letter queue, a stream's on-failure queue). */
  readonly failures: boolean;
}

export interface LocalEndpoints {
  readonly version: 1;
  /** The app's prefix (names its local control table, where rebuilt projections' tables are). */
  readonly prefix: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly api: string;
  /** True for the embedded emulators (placeholder credentials will do). */
  readonly embedded: boolean;
  /**
   * A deployed app (the console's AWS source) rather than `canon dev`: it has no local control
   * table (blue/green rebuilds are local only), so every projection writes its planned table.
   */
  readonly deployed?: boolean;
  /** Region and endpoint settings (AWS_REGION, AWS_ENDPOINT_URL_*), never credentials. */
  readonly aws: Readonly<Record<string, string>>;
  readonly projections: readonly ProjectionEndpoint[];
  readonly queues: readonly QueueEndpoint[];
}

const fileName = "endpoints.json";

/** Describes a started system from its plan and provisioned resources. */
export function describeEndpoints(input: {
  readonly plan: AppPlan;
  readonly resources: ProvisionedResources;
  readonly api: string;
  readonly embedded: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
}): LocalEndpoints {
  const { plan, resources } = input;
  const aws: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.env)) {
    if (value !== undefined && /^AWS_(REGION|DEFAULT_REGION|ENDPOINT_URL(_[A-Z0-9_]+)?)$/.test(name)) aws[name] = value;
  }
  const projections: ProjectionEndpoint[] = [];
  for (const fn of plan.functions) {
    if (fn.role !== "projection" || fn.source.kind !== "sqs" || fn.owner.kind !== "service") continue;
    const queueId = fn.source.queueId;
    const tableRef = Object.values(fn.env).find((ref) => ref.kind === "table" && ref.access === "readWrite");
    const table = tableRef?.kind === "table" ? resources.tableNames.get(tableRef.id) : undefined;
    const queueUrl = resources.queueUrls.get(queueId);
    const deadLetterQueueUrl = resources.deadLetterQueueUrls.get(queueId);
    if (table === undefined || queueUrl === undefined || deadLetterQueueUrl === undefined) continue;
    const service = fn.owner.name;
    const local = queueId.startsWith(`${service}-`) ? queueId.slice(service.length + 1) : queueId;
    projections.push({ name: `${service}.${local}`, functionId: fn.id, table, queueUrl, deadLetterQueueUrl });
  }
  const failureQueues = new Set<string>();
  for (const fn of plan.functions) {
    if (fn.source.kind === "kinesis") failureQueues.add(fn.source.onFailureQueueId);
    for (const [name, ref] of Object.entries(fn.env)) {
      if (name === envNames.deadLetterQueueUrl && ref.kind === "queue") failureQueues.add(ref.id);
    }
  }
  const queues = plan.queues.flatMap((queue): QueueEndpoint[] => {
    const url = resources.queueUrls.get(queue.id);
    const deadLetterQueueUrl = resources.deadLetterQueueUrls.get(queue.id);
    const failures = failureQueues.has(queue.id);
    return url && deadLetterQueueUrl ? [{ id: queue.id, url, deadLetterQueueUrl, failures }] : [];
  });
  return {
    version: 1,
    prefix: plan.prefix,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    api: input.api,
    embedded: input.embedded,
    aws,
    projections,
    queues,
  };
}

/** Writes the endpoints file into the data folder; returns its path. */
export function writeEndpoints(dataDir: string, endpoints: LocalEndpoints): string {
  const path = join(dataDir, fileName);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path, `${JSON.stringify(endpoints, null, 2)}\n`, { mode: 0o600 });
  return path;
}

/** Removes the endpoints file if this process wrote it. */
export function removeEndpoints(dataDir: string): void {
  const path = join(dataDir, fileName);
  try {
    const current = JSON.parse(readFileSync(path, "utf8")) as Partial<LocalEndpoints>;
    if (current.pid === process.pid) rmSync(path, { force: true });
  } catch {
    // Absent or unreadable: nothing of ours to remove.
  }
}

/** Thrown when no running `canon dev` is found for a data folder. */
export class NotRunningError extends Error {
  override name = "NotRunningError";
  readonly code = "not_running" as const;
}

/** Reads the endpoints of the `canon dev` running on a data folder. */
export function readEndpoints(dataDir: string): LocalEndpoints {
  const path = join(dataDir, fileName);
  if (!existsSync(path)) {
    throw new NotRunningError(`no running system found: ${path} does not exist (start one with \`canon dev\`)`);
  }
  const endpoints = JSON.parse(readFileSync(path, "utf8")) as LocalEndpoints;
  if (endpoints.version !== 1) throw new Error(`${path}: unknown version ${String(endpoints.version)}`);
  if (!isAlive(endpoints.pid)) {
    throw new NotRunningError(
      `no running system found: ${path} was left by process ${endpoints.pid}, which has exited`,
    );
  }
  return endpoints;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
