/**
 * What `canon dlq` does, against a running system (see endpoints.ts): list what is parked
 * (per aggregate, in each projection's table) and what sits in dead-letter queues, and
 * redrive a parked aggregate by sending a redrive request into its projection's queue, in the
 * aggregate's message group, so the projection's own consumer replays it in order.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { sqsClient } from "../aws/clients.ts";
import { isAwsError } from "../aws/errors.ts";
import { listParks, type ParkHead, type ParkListing, type RedriveRequest, readPark } from "../handlers/parking.ts";
import { consumerTables } from "../local-cloud/control.ts";
import type { LocalEndpoints, ProjectionEndpoint } from "./endpoints.ts";

/** Points the SDK at a running system's endpoints (placeholder credentials for the emulators). */
export function useEndpoints(endpoints: LocalEndpoints): void {
  Object.assign(process.env, endpoints.aws);
  if (endpoints.embedded) {
    process.env.AWS_ACCESS_KEY_ID ??= "local";
    process.env.AWS_SECRET_ACCESS_KEY ??= "local";
  }
}

export interface ParkedAggregate {
  readonly projection: string;
  readonly group: string;
  readonly events: number;
  readonly reason: string;
  readonly attempts: number;
  readonly failedEventId?: string;
  readonly parkedAt: string;
  readonly updatedAt: string;
  readonly lastRedrive?: ParkHead["lastRedrive"];
  readonly parked: readonly { eventId?: string; type?: string; version?: number; messageId: string }[];
}

export interface DeadLetterQueue {
  /** The queue's name. */
  readonly queue: string;
  /** The planned queue whose dead letters these are; `canon dlq move <id>` sends them back to it. */
  readonly movableTo?: string;
  readonly messages: number;
  /** Up to ten messages, peeked (not removed), with the reason when the message carries one. */
  readonly sample: readonly { messageId: string; reason?: string; summary: string }[];
}

export interface DeadLetterReport {
  readonly parked: readonly ParkedAggregate[];
  readonly deadLetterQueues: readonly DeadLetterQueue[];
}

/**
 * The tables each projection's parks may be in: the planned one, and the one a blue/green
 * rebuild moved its consumer to (the local control table), first the one it writes now.
 */
async function projectionTables(endpoints: LocalEndpoints): Promise<Map<string, string[]>> {
  let moved = new Map<string, { table: string; applied: boolean }>();
  try {
    if (!endpoints.deployed) moved = await consumerTables(endpoints.prefix);
  } catch (error) {
    if (!isAwsError(error, "ResourceNotFoundException")) throw error;
  }
  return new Map(
    endpoints.projections.map((p) => {
      const move = moved.get(p.functionId);
      const tables = move === undefined ? [p.table] : move.applied ? [move.table, p.table] : [p.table, move.table];
      return [p.name, [...new Set(tables)]];
    }),
  );
}

/** Lists every parked aggregate and every dead-letter queue's depth (with a sample when not empty). */
export async function deadLetterReport(endpoints: LocalEndpoints): Promise<DeadLetterReport> {
  const tables = await projectionTables(endpoints);
  const parked = (
    await Promise.all(
      endpoints.projections.flatMap((projection) =>
        (tables.get(projection.name) ?? [projection.table]).map(async (table) =>
          (await listParks(table)).map((p) => toParked(projection, p)),
        ),
      ),
    )
  ).flat();
  // Every queue's dead-letter queue, and the failure destinations themselves (e.g. the relay's).
  const deadLetterQueues = await Promise.all([
    ...endpoints.queues.filter((q) => q.failures).map((queue) => inspectQueue(queue.url)),
    ...endpoints.queues.map((queue) => inspectQueue(queue.deadLetterQueueUrl, queue.failures ? undefined : queue.id)),
  ]);
  return { parked, deadLetterQueues };
}

function toParked(projection: ProjectionEndpoint, listing: ParkListing): ParkedAggregate {
  const { head, events } = listing;
  return {
    projection: projection.name,
    group: head.group,
    events: events.length,
    reason: head.reason,
    attempts: head.attempts,
    failedEventId: head.failedEventId,
    parkedAt: head.parkedAt,
    updatedAt: head.updatedAt,
    lastRedrive: head.lastRedrive,
    parked: events.map((e) => ({ eventId: e.eventId, type: e.type, version: e.version, messageId: e.messageId })),
  };
}

async function inspectQueue(url: string, movableTo?: string): Promise<DeadLetterQueue> {
  const queue = new URL(url).pathname.split("/").filter(Boolean).at(-1) ?? url;
  const movable = movableTo === undefined ? {} : { movableTo };
  const attributes = await sqsClient().send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  const messages =
    Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  if (messages === 0) return { queue, ...movable, messages, sample: [] };
  // Peek: received with a zero visibility timeout, so the messages stay where they are.
  const received = await sqsClient().send(
    new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0 }),
  );
  const sample = (received.Messages ?? []).map((m) => ({
    messageId: m.MessageId ?? "",
    ...describeBody(m.Body ?? ""),
  }));
  return { queue, ...movable, messages, sample };
}

/** The reason a dead-lettered message carries (the relay's and Lambda's on-failure shapes), and what it is. */
function describeBody(body: string): { reason?: string; summary: string } {
  try {
    const json = JSON.parse(body) as Record<string, unknown>;
    const context = json.requestContext as { reason?: string; condition?: string } | undefined;
    const reason = typeof json.reason === "string" ? json.reason : (context?.reason ?? context?.condition);
    if (typeof json.type === "string" && typeof json.id === "string") {
      return { reason, summary: `${json.type} ${json.id} (${String(json.subject)} v${String(json.aggregateversion)})` };
    }
    if (typeof json.commandId === "string") return { reason, summary: `command ${json.commandId}` };
    return { reason, summary: body.slice(0, 120) };
  } catch {
    return { summary: body.slice(0, 120) };
  }
}

/** Thrown for a redrive that cannot be requested (unknown projection, nothing parked, ambiguous id). */
export class RedriveRefusedError extends Error {
  override name = "RedriveRefusedError";
  readonly code = "redrive_refused" as const;
}

export type RedriveOutcome =
  | { readonly outcome: "cleared"; readonly events: number; readonly group: string }
  | { readonly outcome: "failed"; readonly reason: string; readonly eventId?: string; readonly group: string }
  | { readonly outcome: "timeout"; readonly group: string };

/**
 * Asks a projection to replay one parked aggregate, and waits for the answer: the park cleared
 * (every event applied, in order), or still parked with the new reason. `aggregate` is the
 * message group (`Account#acc-1`) or just the aggregate id when that is unambiguous.
 */
export async function redrive(
  endpoints: LocalEndpoints,
  projectionName: string,
  aggregate: string,
  options: { readonly skip?: string; readonly timeoutMs?: number } = {},
): Promise<RedriveOutcome> {
  const projection = endpoints.projections.find((p) => p.name === projectionName);
  if (projection === undefined) {
    const known = endpoints.projections.map((p) => p.name).join(", ");
    throw new RedriveRefusedError(`unknown projection "${projectionName}" (known: ${known})`);
  }
  // The consumer replays the park in the table it writes now.
  const table = (await projectionTables(endpoints)).get(projection.name)?.[0] ?? projection.table;
  const group = await resolveGroup(projection, table, aggregate);
  const head = await readPark(table, group);
  if (head === undefined) throw new RedriveRefusedError(`${projectionName}: nothing is parked for ${group}`);
  const request: RedriveRequest = {
    canon: "redrive",
    group,
    requestId: randomUUID(),
    requestedAt: new Date().toISOString(),
    skip: options.skip,
  };
  await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: projection.queueUrl,
      MessageBody: JSON.stringify(request),
      MessageGroupId: group,
      MessageDeduplicationId: request.requestId,
    }),
  );
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    const current = await readPark(table, group);
    if (current === undefined || current.parkedAt > request.requestedAt) {
      return { outcome: "cleared", events: head.next - head.first, group };
    }
    if (current.lastRedrive?.requestId === request.requestId) {
      return { outcome: "failed", reason: current.lastRedrive.reason, eventId: current.lastRedrive.eventId, group };
    }
    await sleep(200);
  }
  return { outcome: "timeout", group };
}

async function resolveGroup(projection: ProjectionEndpoint, table: string, aggregate: string): Promise<string> {
  if (aggregate.includes("#")) return aggregate;
  const groups = (await listParks(table))
    .map((p) => p.head.group)
    .filter((g) => g === aggregate || g.endsWith(`#${aggregate}`));
  if (groups.length === 1) return groups[0] as string;
  if (groups.length === 0) throw new RedriveRefusedError(`${projection.name}: nothing is parked for "${aggregate}"`);
  throw new RedriveRefusedError(`${projection.name}: "${aggregate}" is ambiguous: ${groups.join(", ")}`);
}
