/**
 * The projection runtime: events from the projection's FIFO queue (raw SNS delivery, message
 * group = aggregate), applied to the projection's own table, exactly once in effect.
 *
 * - Order: a batch is split by message group; groups run concurrently, each in order. When an
 *   event fails, the rest of its group in the batch is reported failed too (SQS redelivers them
 *   in order), and other groups are unaffected.
 * - Exactly once in effect: every write is idempotent and conditional (see
 *   `evolveAggregateItem` and counters.ts), so duplicates and redeliveries change nothing.
 * - Poison events: an event still failing on its `parkAfterReceives`-th receive is parked with
 *   its aggregate (parking.ts): acknowledged, recorded with its reason, and everything after it
 *   in its group waits behind it until `canon dlq redrive`, so order is never broken.
 * - Law F: a projection's definition is an `apply` over its own table, handed only the table's
 *   name; nothing in its type can publish or send.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { BatchWriteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { dynamoClient } from "../aws/clients.ts";
import { isConditionalCheckFailed } from "../aws/errors.ts";
import { optionalEnv, requireEnv } from "../env.ts";
import { type EventEnvelope, MalformedMessageError, readEvent } from "../events/envelope.ts";
import { type Upcaster, upcast } from "../events/upcast.ts";
import { envNames } from "../plan.ts";
import {
  appendToPark,
  describeError,
  type ParkedEvent,
  type ParkHead,
  type ParkInput,
  parseRedriveRequest,
  type RedriveRequest,
  readPark,
  redrivePark,
  startPark,
} from "./parking.ts";

const logger = new Logger({ serviceName: "canon-projection" });

/** Environment variable with the receive count at which a failing event is parked. */
export const parkAfterReceivesEnv = envNames.parkAfterReceives;

/** Parking threshold of the projections built here: below the queues' default maxReceiveCount (5). */
export const defaultParkAfterReceives = 3;

/** All a projection gets to work with: its own table. */
export interface ProjectionTarget {
  readonly table: string;
}

export interface ProjectionDefinition {
  readonly name: string;
  /**
   * Park an event still failing on this receive (see parking.ts); keep it below the queue's
   * maxReceiveCount, so the queue's dead-letter queue is only the last resort.
   * The `CANON_PARK_AFTER_RECEIVES` variable, when set, takes precedence.
   * @default no parking: a failing event goes to the queue's dead-letter queue
   */
  readonly parkAfterReceives?: number;
  /** Bring older event versions up to date before `apply` sees them (events/upcasters.ts). @default none */
  readonly upcasters?: readonly Upcaster[];
  /** Applies one event. Must be idempotent: the runtime delivers at least once. */
  apply(event: EventEnvelope, target: ProjectionTarget): Promise<void>;
  /**
   * Optional fast path: applies consecutive events of one aggregate at once (fewer writes). If it
   * throws, the runtime applies the same events one by one, so it must be idempotent too.
   */
  applyRun?(events: readonly EventEnvelope[], target: ProjectionTarget): Promise<void>;
}

/** A projection's Lambda handler (SQS event source, ReportBatchItemFailures); it carries its definition. */
export interface ProjectionHandler {
  (event: SQSEvent, context?: Context): Promise<SQSBatchResponse>;
  readonly definition: ProjectionDefinition;
}

/** Builds the SQS (FIFO) Lambda handler of a projection. */
export function projectionHandler(definition: ProjectionDefinition): ProjectionHandler {
  let runtime: Runtime | undefined;
  const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    runtime ??= createRuntime(definition);
    return handleBatch(runtime, event.Records);
  };
  return Object.assign(handler, { definition });
}

interface Runtime {
  readonly definition: ProjectionDefinition;
  readonly target: ProjectionTarget;
  readonly parkAfterReceives: number | undefined;
}

function createRuntime(definition: ProjectionDefinition): Runtime {
  const fromEnv = optionalEnv(parkAfterReceivesEnv, "");
  const parkAfterReceives = fromEnv === "" ? definition.parkAfterReceives : Number(fromEnv);
  if (parkAfterReceives !== undefined && !(Number.isInteger(parkAfterReceives) && parkAfterReceives >= 1)) {
    throw new Error(`${definition.name}: the park threshold must be a positive integer, not "${parkAfterReceives}"`);
  }
  return { definition, target: { table: requireEnv(envNames.table) }, parkAfterReceives };
}

type Item =
  | { readonly kind: "event"; readonly record: SQSRecord; readonly event: EventEnvelope }
  | { readonly kind: "redrive"; readonly record: SQSRecord; readonly request: RedriveRequest }
  /** Not readable: malformed (never retried), or its claim check could not be resolved yet (retried). */
  | { readonly kind: "malformed"; readonly record: SQSRecord; readonly reason: string; readonly retryable: boolean };

async function handleBatch(runtime: Runtime, records: readonly SQSRecord[]): Promise<SQSBatchResponse> {
  const groups = new Map<string, Item[]>();
  for (const { group, item } of await Promise.all(
    records.map((r) => classify(r, runtime.definition.upcasters ?? [])),
  )) {
    groups.set(group, [...(groups.get(group) ?? []), item]);
  }
  const failed = await Promise.all([...groups].map(([group, items]) => processGroup(runtime, group, items)));
  return { batchItemFailures: failed.flat().map((itemIdentifier) => ({ itemIdentifier })) };
}

/** Sorts a record into its group: an event (claim check resolved, upcast), a redrive request, or malformed. */
async function classify(record: SQSRecord, upcasters: readonly Upcaster[]): Promise<{ group: string; item: Item }> {
  const messageGroup = record.attributes.MessageGroupId;
  const request = parseRedriveRequest(record.body);
  if (request !== undefined) {
    if (messageGroup === undefined || messageGroup === request.group) {
      return { group: request.group, item: { kind: "redrive", record, request } };
    }
    return {
      group: messageGroup,
      item: {
        kind: "malformed",
        record,
        reason: `redrive request for ${request.group} sent in group ${messageGroup}`,
        retryable: false,
      },
    };
  }
  try {
    const event = upcast(await readEvent(record.body), upcasters);
    return { group: messageGroup ?? `${event.aggregatetype}#${event.subject}`, item: { kind: "event", record, event } };
  } catch (error) {
    return {
      group: messageGroup ?? record.messageId,
      // Bytes that are not an event never will be; a claim check that failed to resolve may yet.
      item: {
        kind: "malformed",
        record,
        reason: describeError(error),
        retryable: !(error instanceof Error && error.name === "MalformedMessageError"),
      },
    };
  }
}

/** Processes one group's items in order; returns the message ids to retry. */
async function processGroup(runtime: Runtime, group: string, items: readonly Item[]): Promise<string[]> {
  const { definition, target } = runtime;
  const parking = runtime.parkAfterReceives !== undefined;
  let index = 0;
  try {
    let park = parking ? await readPark(target.table, group) : undefined;
    while (index < items.length) {
      const item = items[index] as Item;
      if (item.kind === "redrive") {
        park = await redrive(runtime, park, item.request);
        index += 1;
        continue;
      }
      if (park !== undefined) {
        const reason = `parked behind ${park.failedEventId ?? "an earlier message"}`;
        park = await appendToPark(target.table, park, { ...parkInput(item), reason });
        if (park !== undefined) {
          index += 1;
          continue;
        }
        // The park was cleared meanwhile: everything before this event is applied; apply it.
      }
      const run = item.kind === "event" ? eventRun(items, index) : [];
      if (run.length > 1 && definition.applyRun !== undefined) {
        try {
          await definition.applyRun(run, target);
          index += run.length;
          continue;
        } catch (error) {
          logger.warn("run not applied; applying its events one by one", { projection: definition.name, error });
        }
      }
      const failure = item.kind === "malformed" ? item.reason : await applyOne(definition, target, item.event);
      if (failure === undefined) {
        index += 1;
        continue;
      }
      const receives = Number(item.record.attributes.ApproximateReceiveCount ?? "1");
      const threshold = runtime.parkAfterReceives;
      const hopeless = item.kind === "malformed" && !item.retryable;
      if (threshold !== undefined && (hopeless || receives >= threshold)) {
        park = await startPark(target.table, definition.name, group, {
          ...parkInput(item),
          reason: failure,
          attempts: receives,
        });
        logger.error("event parked: its aggregate waits for `canon dlq redrive`", {
          projection: definition.name,
          group,
          messageId: item.record.messageId,
          reason: failure,
          receives,
        });
        index += 1;
        continue;
      }
      logger.warn("event not applied; its group is retried", {
        projection: definition.name,
        group,
        reason: failure,
        receives,
      });
      return items.slice(index).map((i) => i.record.messageId);
    }
    return [];
  } catch (error) {
    logger.error("group not processed; retried", { projection: definition.name, group, error });
    return items.slice(index).map((i) => i.record.messageId);
  }
}

/** The consecutive events from `start` on (up to the next redrive request or malformed message). */
function eventRun(items: readonly Item[], start: number): EventEnvelope[] {
  const run: EventEnvelope[] = [];
  for (let i = start; i < items.length; i++) {
    const item = items[i] as Item;
    if (item.kind !== "event") break;
    run.push(item.event);
  }
  return run;
}

async function applyOne(
  definition: ProjectionDefinition,
  target: ProjectionTarget,
  event: EventEnvelope,
): Promise<string | undefined> {
  try {
    await definition.apply(event, target);
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}

function parkInput(item: Exclude<Item, { kind: "redrive" }>): ParkInput {
  const base = { messageId: item.record.messageId, body: item.record.body };
  if (item.kind === "malformed") return base;
  return { ...base, eventId: item.event.id, type: item.event.type, version: item.event.aggregateversion };
}

/** Replays a group's park on request; returns what is left of it. */
async function redrive(
  runtime: Runtime,
  park: ParkHead | undefined,
  request: RedriveRequest,
): Promise<ParkHead | undefined> {
  const { definition, target } = runtime;
  // Read it even when parking is off now: a park from before still deserves its redrive.
  park ??= await readPark(target.table, request.group);
  if (park === undefined) {
    logger.info("redrive requested for a group that is not parked", { projection: definition.name, request });
    return undefined;
  }
  const result = await redrivePark(target.table, request, async (entry: ParkedEvent) =>
    definition.apply(await parseParked(entry, definition.upcasters ?? []), target),
  );
  logger.warn("redrive", { projection: definition.name, group: request.group, requestId: request.requestId, result });
  return result.outcome === "cleared" ? undefined : await readPark(target.table, request.group);
}

async function parseParked(entry: ParkedEvent, upcasters: readonly Upcaster[]): Promise<EventEnvelope> {
  if (parseRedriveRequest(entry.body) !== undefined)
    throw new MalformedMessageError("a redrive request is not an event");
  return upcast(await readEvent(entry.body), upcasters);
}

/** An item of an aggregate-keyed projection: it remembers the aggregate version it reflects. */
export interface VersionedItem {
  readonly id: string;
  readonly version: number;
}

/**
 * Folds events of one aggregate into its item, each once: an event at or below the item's
 * version is a duplicate and changes nothing. One read and one write, conditional on the version
 * read, so a concurrent redelivery cannot apply twice. `facts` (items that only one event
 * writes, so order does not matter) go first, in BatchWriteItem calls: the item moves past an
 * event only once its facts are stored. Returns how many events were new.
 */
export async function evolveAggregateItem<Item extends VersionedItem>(
  table: string,
  key: string,
  events: readonly EventEnvelope[],
  evolve: (item: Item | undefined, event: EventEnvelope) => Item,
  facts?: (event: EventEnvelope) => readonly Record<string, unknown>[],
): Promise<number> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await dynamoClient().send(
      new GetCommand({ TableName: table, Key: { id: key }, ConsistentRead: true }),
    );
    const read = current.Item as Item | undefined;
    let item = read;
    const fresh: EventEnvelope[] = [];
    for (const event of events) {
      if (event.aggregateversion <= (item?.version ?? 0)) continue;
      item = { ...evolve(item, event), id: key, version: event.aggregateversion };
      fresh.push(event);
    }
    if (item === undefined || fresh.length === 0) return 0;
    if (facts !== undefined) await putFacts(table, fresh.flatMap(facts));
    try {
      await dynamoClient().send(
        new PutCommand({
          TableName: table,
          Item: item,
          ConditionExpression: read === undefined ? "attribute_not_exists(id)" : "version = :read",
          ExpressionAttributeValues: read === undefined ? undefined : { ":read": read.version },
        }),
      );
      return fresh.length;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      // Someone applied a newer version meanwhile: read again and re-decide.
    }
  }
  throw new Error(`could not apply events to ${key}: the item kept changing`);
}

/**
 * Applies one event to the item of its aggregate, once (see `evolveAggregateItem`). Returns
 * whether the event was applied.
 */
export async function applyToAggregateItem<Item extends VersionedItem>(
  table: string,
  key: string,
  event: EventEnvelope,
  evolve: (item: Item | undefined) => Item,
): Promise<boolean> {
  return (await evolveAggregateItem<Item>(table, key, [event], (item) => evolve(item))) === 1;
}

/**
 * Writes items that exactly one event determines (same key, same content on every delivery), so
 * neither order nor duplicates matter: BatchWriteItem, 25 at a time, unprocessed ones retried.
 */
export async function putFacts(table: string, items: readonly Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    let requests: { PutRequest: { Item: Record<string, unknown> } }[] | undefined = items
      .slice(i, i + 25)
      .map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; requests !== undefined && requests.length > 0; attempt++) {
      if (attempt === 8) throw new Error(`BatchWriteItem left ${requests.length} items unprocessed in ${table}`);
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
      const result = await dynamoClient().send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
      requests = result.UnprocessedItems?.[table] as typeof requests;
    }
  }
}

/** A projection with one item per aggregate, folded by pure code (the runtime makes it exactly once). */
export interface AggregateProjection<Item extends VersionedItem> {
  readonly name: string;
  /** The item key of an event's aggregate. @default the aggregate id (the event's subject) */
  key?(event: EventEnvelope): string;
  /** Folds one event into the item (`undefined`: none yet); the runtime sets `id` and `version`. */
  evolve(item: Item | undefined, event: EventEnvelope): Item;
  /** Items an event adds on its own (e.g. statement lines), each with a deterministic `id`. */
  facts?(event: EventEnvelope): readonly Record<string, unknown>[];
  /** @default defaultParkAfterReceives */
  readonly parkAfterReceives?: number;
}

/** Builds the definition of an aggregate-keyed projection: one conditional write per aggregate per batch. */
export function aggregateProjection<Item extends VersionedItem>(view: AggregateProjection<Item>): ProjectionDefinition {
  const key = (event: EventEnvelope) => view.key?.(event) ?? event.subject;
  const evolve = (item: Item | undefined, event: EventEnvelope) => view.evolve(item, event);
  const facts = view.facts?.bind(view);
  return {
    name: view.name,
    parkAfterReceives: view.parkAfterReceives ?? defaultParkAfterReceives,
    async apply(event, target) {
      await evolveAggregateItem(target.table, key(event), [event], evolve, facts);
    },
    async applyRun(events, target) {
      // Consecutive events with the same key fold together, in order.
      for (let i = 0; i < events.length; ) {
        const first = key(events[i] as EventEnvelope);
        let end = i + 1;
        while (end < events.length && key(events[end] as EventEnvelope) === first) end += 1;
        await evolveAggregateItem(target.table, first, events.slice(i, end), evolve, facts);
        i = end;
      }
    },
  };
}
