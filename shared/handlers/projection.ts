/**
 * The projection runtime: events from the projection's FIFO queue (raw SNS delivery, message
 * group = aggregate), applied to the projection's own table, exactly once in effect, a batch at
 * a time.
 *
 * - A batch, not an event: the runtime reads what the whole batch needs at once (its park heads
 *   and the items the projection names, in BatchGetItem calls), then hands every flowing group's
 *   events to the projection's `applyBatch`, which folds them in memory and writes each changed
 *   item once (see `aggregateProjection`, and counters.ts).
 * - Order: a batch is split by message group; each group is applied in order. When an event
 *   fails, the rest of its group in the batch is applied one by one from there, as before: the
 *   failing event and those behind it are reported failed (SQS redelivers them in order), and
 *   other groups are unaffected.
 * - Exactly once in effect: every write is idempotent and conditional, so duplicates,
 *   redeliveries and concurrent redeliveries change nothing.
 * - Poison events: an event still failing on its `parkAfterReceives`-th receive is parked with
 *   its aggregate (parking.ts): acknowledged, recorded with its reason, and everything after it
 *   in its group waits behind it until `canon dlq redrive`, so order is never broken.
 * - Law F: a projection's definition is an `apply` over its own table, handed only the table's
 *   name; nothing in its type can publish or send.
 */
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { batchGetItems, batchPutItems } from "../aws/batch.ts";
import { dynamoClient } from "../aws/clients.ts";
import { isConditionalCheckFailed } from "../aws/errors.ts";
import { optionalEnv, requireEnv } from "../env.ts";
import { isCanonError } from "../errors.ts";
import { type EventEnvelope, MalformedMessageError, readEvent } from "../events/envelope.ts";
import { type Upcaster, upcast } from "../events/upcast.ts";
import { commandKeys, functionLogger } from "../log.ts";
import { envNames } from "../plan.ts";
import { openEvent, subjectErasedType } from "../privacy/fields.ts";
import { type RetryPolicy, retry } from "../retry.ts";
import {
  appendToPark,
  describeError,
  type ParkedEvent,
  type ParkHead,
  type ParkInput,
  parkHeadKey,
  parseRedriveRequest,
  type RedriveRequest,
  readPark,
  redrivePark,
  startPark,
} from "./parking.ts";

const logger = /* @__PURE__ */ functionLogger("projection");

/** Environment variable with the receive count at which a failing event is parked. */
export const parkAfterReceivesEnv = envNames.parkAfterReceives;

/** Parking threshold of the projections built here: below the queues' default maxReceiveCount (5). */
export const defaultParkAfterReceives = 3;

/** All a projection gets to work with: its own table. */
export interface ProjectionTarget {
  readonly table: string;
}

/** Items read for a batch, by key: a key read and not found maps to undefined; a key not read is absent. */
export type PrefetchedItems = ReadonlyMap<string, Record<string, unknown> | undefined>;

/** What `applyBatch` works with: the table, and the items its `prefetch` named, read already. */
export interface BatchTarget extends ProjectionTarget {
  readonly items: PrefetchedItems;
}

/** One message group's leading events in a batch, in delivery order. */
export interface Run {
  /** The message group (`<aggregate type>#<aggregate id>` for events from the relay). */
  readonly group: string;
  readonly events: readonly EventEnvelope[];
}

/** How far a run got: its first `applied` events are applied; `error` is why the next one was not. */
export interface RunOutcome {
  readonly applied: number;
  readonly error?: unknown;
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
  /**
   * Whether events reach it with their personal data opened (plaintext, or the erased marker),
   * or still sealed (a service's state projection: decision state never holds personal data in
   * plaintext, so it needs no erasing). @default "open"
   */
  readonly personalData?: "open" | "sealed";
  /** Applies one event (a redrive, or what a batch left). Must be idempotent: the runtime delivers at least once. */
  apply(event: EventEnvelope, target: ProjectionTarget): Promise<void>;
  /**
   * Keys of the items applying `event` reads. The runtime reads them for the whole batch, with its
   * own park heads, in BatchGetItem calls, and hands them to `applyBatch`. @default none
   */
  prefetch?(event: EventEnvelope, target: ProjectionTarget): readonly string[];
  /**
   * Applies a batch at once: the leading events of every group that flows (not parked), one run
   * per group. Returns, per run, how many of its events are applied (a prefix); the runtime
   * applies the rest one by one with `apply`, retrying and parking them as any failure. If it
   * throws, every run is applied that way. Must be idempotent, like `apply`.
   * @default none: every event goes through `apply`
   */
  applyBatch?(runs: readonly Run[], target: BatchTarget): Promise<readonly RunOutcome[]>;
  /**
   * How the projection folds events into items, set by `aggregateProjection`: a replay from the
   * archive (shared/archive/replay-engine.ts) folds through it in memory and writes each item
   * once per checkpoint, instead of once per batch. @default none: a replay feeds `applyBatch`
   */
  readonly fold?: AggregateFold<VersionedItem>;
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
    records.map((r) => classify(r, runtime.definition.upcasters ?? [], runtime.definition.personalData)),
  )) {
    groups.set(group, [...(groups.get(group) ?? []), item]);
  }
  let start: BatchStart;
  try {
    start = await applyAtOnce(runtime, groups);
  } catch (error) {
    logger.error("batch not read; retried", { projection: runtime.definition.name, error });
    return { batchItemFailures: records.map((r) => ({ itemIdentifier: r.messageId })) };
  }
  const failed = await Promise.all(
    [...groups].map(([group, items]) =>
      processGroup(runtime, group, items, start.applied.get(group) ?? 0, start.parks.get(group)),
    ),
  );
  return { batchItemFailures: failed.flat().map((itemIdentifier) => ({ itemIdentifier })) };
}

/** Where each group's one-by-one processing starts: past its events applied at once, with its park. */
interface BatchStart {
  readonly applied: ReadonlyMap<string, number>;
  readonly parks: ReadonlyMap<string, ParkHead | undefined>;
}

/**
 * Reads the batch's park heads and the items its events need in one go (BatchGetItem), then
 * applies the leading events of every group that is not parked with one `applyBatch`.
 */
async function applyAtOnce(runtime: Runtime, groups: ReadonlyMap<string, readonly Item[]>): Promise<BatchStart> {
  const { definition, target } = runtime;
  const parking = runtime.parkAfterReceives !== undefined;
  const heads = new Map<string, string>();
  for (const [group, items] of groups) {
    // A park from before deserves its redrive even when parking is off now.
    if (parking || items.some((i) => i.kind === "redrive")) heads.set(group, parkHeadKey(group));
  }
  const keys = new Set(heads.values());
  if (definition.applyBatch !== undefined) {
    for (const items of groups.values()) {
      for (const event of eventRun(items, 0)) for (const key of prefetchOf(definition, event, target)) keys.add(key);
    }
  }
  const applied = new Map<string, number>();
  let read: Map<string, Record<string, unknown> | undefined>;
  try {
    read = await readItems(target.table, [...keys]);
  } catch (error) {
    if (keys.size === heads.size) throw error;
    // A key an event named may be what DynamoDB refuses: read the heads alone, apply one by one.
    logger.warn("batch not read; applying its events one by one", { projection: definition.name, error });
    read = await readItems(target.table, [...heads.values()]);
    return {
      applied,
      parks: new Map([...heads].map(([group, key]) => [group, read.get(key) as ParkHead | undefined])),
    };
  }
  const parks = new Map([...heads].map(([group, key]) => [group, read.get(key) as ParkHead | undefined]));
  const runs: Run[] = [];
  for (const [group, items] of groups) {
    const events = eventRun(items, 0);
    if (parks.get(group) === undefined && events.length > 0) runs.push({ group, events });
  }
  if (definition.applyBatch === undefined || runs.length === 0) return { applied, parks };
  try {
    const outcomes = await definition.applyBatch(runs, { ...target, items: read });
    runs.forEach((run, i) => {
      const outcome = outcomes[i];
      const count = Math.max(0, Math.min(run.events.length, outcome?.applied ?? 0));
      applied.set(run.group, count);
      if (count < run.events.length) {
        logger.info("events not applied with their batch; applying them one by one", {
          projection: definition.name,
          group: run.group,
          reason: outcome?.error === undefined ? "none given" : describeError(outcome.error),
        });
      }
    });
  } catch (error) {
    logger.warn("batch not applied; applying its events one by one", { projection: definition.name, error });
  }
  return { applied, parks };
}

/** The keys an event needs read; an event whose keys cannot be told is left to its apply (and its failure). */
function prefetchOf(definition: ProjectionDefinition, event: EventEnvelope, target: ProjectionTarget): string[] {
  try {
    return [...(definition.prefetch?.(event, target) ?? [])];
  } catch {
    return [];
  }
}

/** Sorts a record into its group: an event (claim check resolved, upcast), a redrive request, or malformed. */
async function classify(
  record: SQSRecord,
  upcasters: readonly Upcaster[],
  personalData: ProjectionDefinition["personalData"],
): Promise<{ group: string; item: Item }> {
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
    const event = upcast(await readOpened(record.body, personalData), upcasters);
    return { group: messageGroup ?? `${event.aggregatetype}#${event.subject}`, item: { kind: "event", record, event } };
  } catch (error) {
    return {
      group: messageGroup ?? record.messageId,
      // Bytes that are not an event never will be; a claim check that failed to resolve may yet.
      item: {
        kind: "malformed",
        record,
        reason: describeError(error),
        retryable: !isCanonError(error, "malformed_message"),
      },
    };
  }
}

/**
 * Processes one group's items in order from `start` (the events before it were applied with the
 * batch), given its park as read with the batch; returns the message ids to retry.
 */
async function processGroup(
  runtime: Runtime,
  group: string,
  items: readonly Item[],
  start: number,
  parkRead: ParkHead | undefined,
): Promise<string[]> {
  const { definition, target } = runtime;
  let index = start;
  let park = parkRead;
  try {
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
          ...eventKeys(item),
        });
        index += 1;
        continue;
      }
      logger.warn("event not applied; its group is retried", {
        projection: definition.name,
        group,
        reason: failure,
        receives,
        ...eventKeys(item),
      });
      return items.slice(index).map((i) => i.record.messageId);
    }
    return [];
  } catch (error) {
    logger.error("group not processed; retried", { projection: definition.name, group, error });
    return items.slice(index).map((i) => i.record.messageId);
  }
}

/** The keys every log line about one command carries (shared/log.ts), for an event's line. */
function eventKeys(item: Item): Record<string, string> {
  if (item.kind !== "event") return {};
  const { event } = item;
  return commandKeys({
    commandId: event.commandid,
    correlationId: event.correlationid,
    aggregateId: event.subject,
    traceparent: event.traceparent,
  });
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
  park ??= await readPark(target.table, request.group);
  if (park === undefined) {
    logger.info("redrive requested for a group that is not parked", { projection: definition.name, request });
    return undefined;
  }
  const result = await redrivePark(target.table, request, async (entry: ParkedEvent) =>
    definition.apply(await parseParked(entry, definition.upcasters ?? [], definition.personalData), target),
  );
  logger.warn("redrive", { projection: definition.name, group: request.group, requestId: request.requestId, result });
  return result.outcome === "cleared" ? undefined : await readPark(target.table, request.group);
}

async function parseParked(
  entry: ParkedEvent,
  upcasters: readonly Upcaster[],
  personalData: ProjectionDefinition["personalData"],
): Promise<EventEnvelope> {
  if (parseRedriveRequest(entry.body) !== undefined)
    throw new MalformedMessageError("a redrive request is not an event");
  return upcast(await readOpened(entry.body, personalData), upcasters);
}

/** An event off the queue, its claim check resolved and (unless kept sealed) its personal data opened. */
async function readOpened(body: string, personalData: ProjectionDefinition["personalData"]): Promise<EventEnvelope> {
  const event = await readEvent(body);
  return personalData === "sealed" ? event : openEvent(event);
}

// --- Items: batch reads and writes of a projection's table (every Canon table is keyed by `id`).

/**
 * Reads items by key at once (BatchGetItem, strongly consistent, 100 keys a call; see
 * shared/aws/batch.ts). Every key asked for maps to its item, or to undefined when there is none.
 */
export async function readItems(
  table: string,
  keys: readonly string[],
): Promise<Map<string, Record<string, unknown> | undefined>> {
  const unique = [...new Set(keys)];
  const found = new Map<string, Record<string, unknown> | undefined>(unique.map((key) => [key, undefined]));
  if (unique.length === 0) return found;
  const items = await batchGetItems(
    table,
    unique.map((id) => ({ id })),
  );
  for (const item of items) found.set(String(item.id), item);
  return found;
}

/**
 * Writes items that exactly one event determines (same key, same content on every delivery), so
 * neither order nor duplicates matter: BatchWriteItem, 25 a call (shared/aws/batch.ts). Items
 * with the same `id` are written once (the last one).
 */
export async function putFacts(table: string, items: readonly Record<string, unknown>[]): Promise<void> {
  const unique = [...new Map(items.map((item) => [String(item.id), item])).values()];
  if (unique.length > 0) await batchPutItems(table, unique);
}

// --- Aggregate projections: one item per aggregate, folded by pure code.

/** An item of an aggregate-keyed projection: it remembers the aggregate version it reflects. */
export interface VersionedItem {
  readonly id: string;
  readonly version: number;
}

/** An event's type and data, as a projection names them (e.g. the decider's event union). */
export interface DomainEvent {
  readonly type: string;
  readonly data: object;
}

/**
 * An event as a projection's `evolve` sees it: the envelope, its `type` and `data` read as the
 * projection's own event union. Nothing checks the data against it (the schemas do, upstream).
 */
export type ProjectedEvent<Event extends DomainEvent = EventEnvelope> = Omit<EventEnvelope, "type" | "data"> & Event;

/** A projection with one item per aggregate: what it folds and how; the runtime does the reads and writes. */
export interface AggregateProjection<Item extends VersionedItem, Event extends DomainEvent = EventEnvelope> {
  readonly name: string;
  /** The event types it folds; any other event leaves the item as it is. @default every event delivered */
  readonly events?: readonly Event["type"][];
  /** Bring older event versions up to date first (events/upcasters.ts). @default none */
  readonly upcasters?: readonly Upcaster[];
  /** The item key of an event's aggregate. @default the aggregate id (the event's subject) */
  key?(event: ProjectedEvent<Event>): string;
  /** Folds one event into the item (`undefined`: none yet); the runtime sets `id` and `version`. */
  evolve(item: Item | undefined, event: ProjectedEvent<Event>): Item;
  /** Items an event adds on its own (e.g. statement lines), each with a deterministic `id`. */
  facts?(event: ProjectedEvent<Event>): readonly Record<string, unknown>[];
  /**
   * Blanks what an item derived from a subject's personal data, on the subject's SubjectErased
   * (docs/privacy.md): the item keyed by the erased subject, which keeps its version. Declare
   * "SubjectErased" among the projection's subscribed events. @default none: erasures pass it by
   */
  erase?(item: Item, subject: string): Item;
  /** @default defaultParkAfterReceives */
  readonly parkAfterReceives?: number;
}

/**
 * Conditional writes of one item retried (re-read, re-folded) before its events are left to
 * `apply`, waiting from 0–100 ms, doubling; any other failure is not retried here.
 */
const foldRetry: RetryPolicy = { attempts: 5, baseMs: 100, retryable: isConditionalCheckFailed };

/**
 * Builds the definition of an aggregate-keyed projection. A batch costs one read of every item
 * it touches (with the runtime's, one BatchGetItem), the facts in BatchWriteItem calls, then one
 * conditional PutItem per changed item, all items at once. Each aggregate's events are folded
 * in order; an event at or below the item's version is a duplicate and changes nothing; the
 * write is conditional on the version read, so a concurrent redelivery cannot apply twice, and
 * a write that lost that race re-reads its item and re-folds (bounded, with backoff).
 */
export function aggregateProjection<Item extends VersionedItem, Event extends DomainEvent = EventEnvelope>(
  view: AggregateProjection<Item, Event>,
): ProjectionDefinition {
  const types = view.events === undefined ? undefined : new Set<string>(view.events);
  const fold: AggregateFold<Item> = {
    handles: (event) => (isErasure(event) ? view.erase !== undefined : types === undefined || types.has(event.type)),
    key: (event) =>
      isErasure(event) ? event.subject : (view.key?.(event as unknown as ProjectedEvent<Event>) ?? event.subject),
    evolve: (item, event) =>
      isErasure(event) && item !== undefined && view.erase !== undefined
        ? view.erase(item, event.subject)
        : view.evolve(item, event as unknown as ProjectedEvent<Event>),
    facts: (event) => view.facts?.(event as unknown as ProjectedEvent<Event>) ?? [],
  };
  return {
    name: view.name,
    upcasters: view.upcasters,
    parkAfterReceives: view.parkAfterReceives ?? defaultParkAfterReceives,
    prefetch: (event) => (fold.handles(event) ? [fold.key(event)] : []),
    applyBatch: (runs, target) => applyAggregateRuns(fold, runs, target),
    fold: fold as unknown as AggregateFold<VersionedItem>,
    async apply(event, target) {
      const [outcome] = await applyAggregateRuns(fold, [{ group: "", events: [event] }], {
        ...target,
        items: new Map(),
      });
      if ((outcome?.applied ?? 0) < 1) throw outcome?.error ?? new Error(`${view.name}: ${event.id} not applied`);
    },
  };
}

/** An aggregate projection's pure parts: which events it folds, into which item, and how. */
export interface AggregateFold<Item> {
  handles(event: EventEnvelope): boolean;
  key(event: EventEnvelope): string;
  evolve(item: Item | undefined, event: EventEnvelope): Item;
  facts(event: EventEnvelope): readonly Record<string, unknown>[];
}

/**
 * One event folded into its item, as the live runtime and a replay both do it: the projection's
 * `evolve`, then the item's key and the aggregate version it now reflects.
 */
export function evolveItem<Item extends VersionedItem>(
  fold: AggregateFold<Item>,
  key: string,
  item: Item | undefined,
  event: EventEnvelope,
): Item {
  // An erasure comes from the subject's history, not the item's: the item keeps its version.
  return {
    ...fold.evolve(item, event),
    id: key,
    version: isErasure(event) ? (item?.version ?? 0) : event.aggregateversion,
  };
}

/** Whether an event changes nothing in an item: a duplicate, or an erasure with nothing to blank. */
export function changesNothing(item: VersionedItem | undefined, event: EventEnvelope): boolean {
  return isErasure(event) ? item === undefined : event.aggregateversion <= (item?.version ?? 0);
}

const isErasure = (event: EventEnvelope) => event.type === subjectErasedType;

/** An event of a run, where it stands in its run. */
interface Entry {
  readonly run: number;
  readonly index: number;
  readonly event: EventEnvelope;
}

/** An item folded: the item read, after the events new to it, and what they add beside it. */
interface Folded<Item> {
  readonly read: Item | undefined;
  readonly item: Item | undefined;
  readonly fresh: readonly Entry[];
  readonly facts: readonly Record<string, unknown>[];
}

/** Tracks how far each run of a batch gets: a run stops at its first event that cannot be applied. */
class RunCuts {
  readonly #cut: number[];
  readonly #errors: unknown[];
  #stops = 0;

  constructor(runs: readonly Run[]) {
    this.#cut = runs.map((run) => run.events.length);
    this.#errors = runs.map(() => undefined);
  }

  /** How many runs were stopped so far (a change means folds that included later events are stale). */
  get stops(): number {
    return this.#stops;
  }

  live(entry: Entry): boolean {
    return entry.index < (this.#cut[entry.run] ?? 0);
  }

  stop(entry: Entry, error: unknown): void {
    if (!this.live(entry)) return;
    this.#cut[entry.run] = entry.index;
    this.#errors[entry.run] = error;
    this.#stops += 1;
  }

  outcomes(): RunOutcome[] {
    return this.#cut.map((applied, run) => ({ applied, error: this.#errors[run] }));
  }
}

async function applyAggregateRuns<Item extends VersionedItem>(
  fold: AggregateFold<Item>,
  runs: readonly Run[],
  target: BatchTarget,
): Promise<RunOutcome[]> {
  const cuts = new RunCuts(runs);
  // Each item's events, in batch order (an aggregate's in its order).
  const entries = new Map<string, Entry[]>();
  runs.forEach((run, r) => {
    for (const [index, event] of run.events.entries()) {
      if (!fold.handles(event)) continue;
      let key: string;
      try {
        key = fold.key(event);
      } catch (error) {
        cuts.stop({ run: r, index, event }, error);
        break;
      }
      entries.set(key, [...(entries.get(key) ?? []), { run: r, index, event }]);
    }
  });
  const missing = [...entries.keys()].filter((key) => !target.items.has(key));
  const fetched = missing.length === 0 ? new Map() : await readItems(target.table, missing);
  const read = (key: string) => (target.items.has(key) ? target.items.get(key) : fetched.get(key)) as Item | undefined;

  const foldItem = (key: string, item: Item | undefined): Folded<Item> => {
    let current = item;
    const fresh: Entry[] = [];
    const facts: Record<string, unknown>[] = [];
    for (const entry of entries.get(key) ?? []) {
      if (!cuts.live(entry)) continue;
      const { event } = entry;
      if (changesNothing(current, event)) continue; // a duplicate: changes nothing
      try {
        const next = evolveItem(fold, key, current, event);
        facts.push(...fold.facts(event));
        current = next;
        fresh.push(entry);
      } catch (error) {
        cuts.stop(entry, error);
      }
    }
    return { read: item, item: current, fresh, facts };
  };
  // Fold every item; a run stopped in one item stops in all, so fold again until none stops.
  let folds: Map<string, Folded<Item>>;
  for (;;) {
    const stops = cuts.stops;
    folds = new Map([...entries.keys()].map((key) => [key, foldItem(key, read(key))]));
    if (cuts.stops === stops) break;
  }

  // Facts first: an item moves past an event only once the event's facts are stored.
  await putFacts(
    target.table,
    [...folds.values()].flatMap((f) => f.facts),
  );
  await Promise.all(
    [...folds].map(async ([key, first]) => {
      let folded = first;
      const factsWritten = new Set(first.fresh);
      /** Why the write of this item gave up (its events are then left to `apply`). */
      let stopped: { reason: unknown } | undefined;
      const write = async (attempt: number) => {
        if (attempt > 1) {
          // Someone applied a newer version meanwhile: read again and fold again.
          for (const entry of folded.fresh) factsWritten.add(entry);
          folded = foldItem(key, await readItem<Item>(target.table, key));
        }
        if (folded.item === undefined || folded.fresh.length === 0) return;
        try {
          const unwritten = folded.fresh.filter((entry) => !factsWritten.has(entry));
          if (unwritten.length > 0)
            await putFacts(
              target.table,
              unwritten.flatMap((entry) => fold.facts(entry.event)),
            );
          await putIfVersion(target.table, folded.item, folded.read?.version);
        } catch (error) {
          if (isConditionalCheckFailed(error)) throw error;
          stopped = { reason: error };
        }
      };
      try {
        await retry(write, foldRetry);
      } catch (error) {
        // A failed read passes through as before; a write that kept losing its race gives up.
        if (!isConditionalCheckFailed(error)) throw error;
        stopped = { reason: new Error(`could not apply events to ${key}: the item kept changing`) };
      }
      if (stopped !== undefined) for (const entry of folded.fresh) cuts.stop(entry, stopped.reason);
    }),
  );
  return cuts.outcomes();
}

/** Writes an item on condition it is still at the version read (absent when `read` is undefined). */
async function putIfVersion(table: string, item: VersionedItem, read: number | undefined): Promise<void> {
  await dynamoClient().send(
    new PutCommand({
      TableName: table,
      Item: item,
      ConditionExpression: read === undefined ? "attribute_not_exists(id)" : "version = :read",
      ExpressionAttributeValues: read === undefined ? undefined : { ":read": read },
    }),
  );
}

/** Reads one item, strongly consistent. */
async function readItem<Item>(table: string, key: string): Promise<Item | undefined> {
  const result = await dynamoClient().send(
    new GetCommand({ TableName: table, Key: { id: key }, ConsistentRead: true }),
  );
  return result.Item as Item | undefined;
}
