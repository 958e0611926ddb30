/**
 * Counter projections: items fed by many aggregates (e.g. totals per day), exact under
 * duplicates, redeliveries and replays, without transactions, a batch at a time.
 *
 * Versions cannot tell a duplicate here (many aggregates feed one item), so each item remembers
 * the ids of the events it counted, and counting is one UpdateItem per key per batch that adds
 * the batch's amounts and event ids together, on condition none of the ids is there yet: atomic
 * on a single item. A duplicate makes the condition fail; the shard is read again, the ids it
 * holds are dropped, and the rest counted.
 *
 * Bound: a DynamoDB item holds 400 KB, so the ids live in shard items `<key>#<n>`, each taking
 * ids until it holds `shardBytes` of them (default 32 KiB: about 800 typical 40-byte ids). An
 * update adds ids only while all but its largest fit under `shardBytes`, so, as if they were
 * added one by one, no shard passes `shardBytes` + one id (at most 200 characters, 800 bytes). A
 * full shard never changes again, so the next one opens. An event is counted in the first shard
 * that is not full, on condition it is in none of them: the full ones are checked first (cached,
 * being immutable), the open one by the condition. DynamoDB bills a write by the item's size, so
 * `shardBytes` trades write and read units per batch (about shardBytes/2 KiB on average)
 * against the number of shards a key ends up with (a million events a day: ~1,250 shards).
 *
 * The view item `<key>` (what the API serves) is the sum of the shards. It is rewritten after
 * every count, from a consistent snapshot: the full shards, then the open one as the count's
 * UpdateItem returned it (or as read, when there was nothing new to count). The write is
 * conditional on `events` (how many events the sum covers, which only grows), so a slower writer
 * with an older snapshot cannot overwrite a newer sum. A crash between the count and the sum is
 * healed by the redelivery, which finds its ids counted and rewrites the sum.
 *
 * A batch of events into one key costs its open shard's read (in the runtime's BatchGetItem),
 * one UpdateItem and one PutItem.
 */
import { PutCommand, UpdateCommand, type UpdateCommandOutput } from "@aws-sdk/lib-dynamodb";
import { dynamoClient } from "../aws/clients.ts";
import { isConditionalCheckFailed } from "../aws/errors.ts";
import type { EventEnvelope } from "../events/envelope.ts";
import type { Upcaster } from "../events/upcast.ts";
import {
  type BatchTarget,
  defaultParkAfterReceives,
  type PrefetchedItems,
  type ProjectionDefinition,
  type Run,
  type RunOutcome,
  readItems,
} from "./projection.ts";

/** A projection of counters per key, fed by any number of aggregates. */
export interface CounterProjection {
  readonly name: string;
  /** The event types it counts; any other event is ignored. @default every event delivered */
  readonly events?: readonly string[];
  /** Bring older event versions up to date first (events/upcasters.ts). @default none */
  readonly upcasters?: readonly Upcaster[];
  /** The key of the item an event counts into, or undefined to ignore it. No "#" in keys. */
  key(event: EventEnvelope): string | undefined;
  /** Fixed attributes of a new item (e.g. its date), with every counter at 0. */
  initial(key: string): Readonly<Record<string, string | number>>;
  /** What the event adds to the item's counters (integers). `events`, the count, is kept for you. */
  add(event: EventEnvelope): Readonly<Record<string, number>>;
  /** Bytes of event ids a shard holds before the next opens. @default 32_768 */
  readonly shardBytes?: number;
  /** @default defaultParkAfterReceives */
  readonly parkAfterReceives?: number;
}

/** The attributes a counter shard keeps for itself; counters may not use these names. */
const reserved = new Set(["id", "key", "shard", "applied", "bytes", "events"]);

/** Bytes reserved for the largest event id (200 characters of up to 4 UTF-8 bytes each). */
const maxIdBytes = 800;

/** Ids one UpdateItem adds at most (its condition names each). */
const maxIdsPerUpdate = 25;

interface Shard {
  readonly id: string;
  readonly shard: number;
  readonly applied?: Set<string>;
  readonly bytes?: number;
  readonly events?: number;
  readonly [counter: string]: unknown;
}

/** An event to count: its id, what it adds, and where it stands in its run. */
interface Count {
  readonly run: number;
  readonly index: number;
  readonly id: string;
  readonly bytes: number;
  readonly amounts: Readonly<Record<string, number>>;
}

/** Builds the definition of a counter projection. */
export function counterProjection(view: CounterProjection): ProjectionDefinition {
  const capacity = view.shardBytes ?? 32_768;
  if (!(Number.isInteger(capacity) && capacity > 0 && capacity <= 380_000 - maxIdBytes)) {
    throw new Error(`${view.name}: shardBytes must be an integer from 1 to ${380_000 - maxIdBytes}`);
  }
  const closed = new ClosedShards(capacity);
  const types = view.events === undefined ? undefined : new Set(view.events);
  const counter: Counter = { view, capacity, closed, handles: (e) => types === undefined || types.has(e.type) };
  return {
    name: view.name,
    upcasters: view.upcasters,
    parkAfterReceives: view.parkAfterReceives ?? defaultParkAfterReceives,
    prefetch(event, target) {
      const key = counter.handles(event) ? view.key(event) : undefined;
      return key === undefined ? [] : [shardKey(key, closed.firstUnknown(target.table, key))];
    },
    applyBatch: (runs, target) => countRuns(counter, runs, target),
    async apply(event, target) {
      const [outcome] = await countRuns(counter, [{ group: "", events: [event] }], { ...target, items: new Map() });
      if ((outcome?.applied ?? 0) < 1) throw outcome?.error ?? new Error(`${view.name}: ${event.id} not counted`);
    },
  };
}

interface Counter {
  readonly view: CounterProjection;
  readonly capacity: number;
  readonly closed: ClosedShards;
  handles(event: EventEnvelope): boolean;
}

const shardKey = (key: string, n: number) => `${key}#${n}`;

/** Counts a batch: per key, its new events in one UpdateItem (or a few), then its sum. */
async function countRuns(counter: Counter, runs: readonly Run[], target: BatchTarget): Promise<RunOutcome[]> {
  const { view } = counter;
  const applied = runs.map((run) => run.events.length);
  const errors: unknown[] = runs.map(() => undefined);
  const stop = (run: number, index: number, error: unknown) => {
    if (index >= (applied[run] ?? 0)) return;
    applied[run] = index;
    errors[run] = error;
  };
  const byKey = new Map<string, Count[]>();
  runs.forEach((run, r) => {
    for (const [index, event] of run.events.entries()) {
      if (!counter.handles(event)) continue;
      try {
        const key = view.key(event);
        if (key === undefined) continue;
        if (key.includes("#")) throw new Error(`${view.name}: key "${key}" contains "#"`);
        const amounts = view.add(event);
        for (const [name, amount] of Object.entries(amounts)) {
          if (reserved.has(name)) throw new Error(`${view.name}: "${name}" is not a counter name`);
          if (!Number.isSafeInteger(amount)) throw new Error(`${view.name}: ${name} must be an integer, not ${amount}`);
        }
        const count = { run: r, index, id: event.id, bytes: Buffer.byteLength(event.id), amounts };
        byKey.set(key, [...(byKey.get(key) ?? []), count]);
      } catch (error) {
        stop(r, index, error);
        break;
      }
    }
  });
  await Promise.all(
    [...byKey].map(async ([key, counts]) => {
      try {
        const shards = await countInto(counter, target.table, key, counts, target.items);
        await writeSum(target.table, key, view.initial(key), shards);
      } catch (error) {
        for (const count of counts) stop(count.run, count.index, error);
      }
    }),
  );
  return applied.map((count, run) => ({ applied: count, error: errors[run] }));
}

/**
 * Counts events into the key's open shard, except those a shard has already; returns the
 * snapshot to sum: the full shards, then the open one.
 */
async function countInto(
  counter: Counter,
  table: string,
  key: string,
  counts: readonly Count[],
  prefetched: PrefetchedItems,
): Promise<Shard[]> {
  const { capacity, closed } = counter;
  const full: Shard[] = [];
  // The same event delivered twice in the batch is one count.
  let pending = [...new Map(counts.map((c) => [c.id, c])).values()];
  const walk = new ShardWalk(closed, table, key, prefetched);
  let n = 0;
  let shard = await walk.look(n);
  for (let round = 0; round < 100; round++) {
    const known = shard;
    if (known !== undefined && closed.isFull(known)) {
      // Full: never changes again. Its ids are counted; the next shard is where new ones go.
      full.push(known);
      pending = pending.filter((c) => !known.applied?.has(c.id));
      n += 1;
      shard = await walk.look(n);
      continue;
    }
    pending = pending.filter((c) => !known?.applied?.has(c.id));
    if (pending.length === 0) return known === undefined ? full : [...full, known];
    const batch = fitting(pending, known?.bytes ?? 0, capacity);
    const counted = await add(table, key, n, batch, capacity);
    if (counted !== undefined) {
      pending = pending.slice(batch.length);
      if (closed.isFull(counted)) {
        closed.remember(table, counted);
        // Full by this very update, so no shard after it existed yet: a snapshot as it stands.
        if (pending.length === 0) return [...full, counted];
      }
      shard = counted;
      continue;
    }
    // Counted already, full, or changed meanwhile: look again.
    shard = await closed.read(table, shardKey(key, n));
  }
  throw new Error(`could not count into ${key}: its shards kept changing`);
}

/** The first ids that fit the open shard (`bytes` of ids so far) as if added one by one: at least one. */
function fitting(pending: readonly Count[], bytes: number, capacity: number): Count[] {
  const batch: Count[] = [];
  let total = 0;
  let largest = 0;
  for (const count of pending) {
    if (batch.length === maxIdsPerUpdate) break;
    const nextTotal = total + count.bytes;
    const nextLargest = Math.max(largest, count.bytes);
    if (batch.length > 0 && bytes + nextTotal - nextLargest > capacity) break;
    batch.push(count);
    total = nextTotal;
    largest = nextLargest;
  }
  return batch;
}

/**
 * Adds the events to shard `n` in one UpdateItem, on condition none is there yet and all but
 * the largest id fit under the capacity; returns the shard after it, or undefined if the
 * condition failed.
 */
async function add(
  table: string,
  key: string,
  n: number,
  batch: readonly Count[],
  capacity: number,
): Promise<Shard | undefined> {
  const bytes = batch.reduce((sum, c) => sum + c.bytes, 0);
  const largest = batch.reduce((max, c) => Math.max(max, c.bytes), 0);
  const names: Record<string, string> = { "#key": "key", "#shard": "shard" };
  const values: Record<string, unknown> = {
    ":ids": new Set(batch.map((c) => c.id)),
    ":count": batch.length,
    ":bytes": bytes,
    ":room": capacity - (bytes - largest),
    ":key": key,
    ":n": n,
  };
  const absent = batch.map((c, i) => {
    values[`:id${i}`] = c.id;
    return `NOT contains(applied, :id${i})`;
  });
  const sums = new Map<string, number>();
  for (const c of batch)
    for (const [name, amount] of Object.entries(c.amounts)) sums.set(name, (sums.get(name) ?? 0) + amount);
  const adds = ["applied :ids", "events :count", "bytes :bytes"];
  [...sums].forEach(([name, amount], i) => {
    names[`#c${i}`] = name;
    values[`:c${i}`] = amount;
    adds.push(`#c${i} :c${i}`);
  });
  try {
    const result: UpdateCommandOutput = await dynamoClient().send(
      new UpdateCommand({
        TableName: table,
        Key: { id: shardKey(key, n) },
        UpdateExpression: `SET #shard = :n, #key = :key ADD ${adds.join(", ")}`,
        ConditionExpression: `(attribute_not_exists(applied) OR (${absent.join(" AND ")})) AND (attribute_not_exists(bytes) OR bytes <= :room)`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: "ALL_NEW",
      }),
    );
    return result.Attributes as Shard | undefined;
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    return undefined;
  }
}

/**
 * Rewrites the key's view item from a consistent snapshot of its shards: the full ones (never
 * changing again), then the first that is not full. No shard after that one can exist yet (a
 * shard opens only once the one before is full), so the snapshot is the state at the moment the
 * open shard was read or updated; `events` orders such states.
 */
async function writeSum(
  table: string,
  key: string,
  initial: Readonly<Record<string, string | number>>,
  shards: readonly Shard[],
): Promise<void> {
  const sum: Record<string, unknown> = { ...initial, events: 0 };
  for (const shard of shards) {
    for (const [name, value] of Object.entries(shard)) {
      if (reserved.has(name) && name !== "events") continue;
      if (typeof value === "number") sum[name] = (typeof sum[name] === "number" ? (sum[name] as number) : 0) + value;
    }
  }
  if (sum.events === 0) return;
  try {
    await dynamoClient().send(
      new PutCommand({
        TableName: table,
        Item: { ...sum, id: key },
        ConditionExpression: "attribute_not_exists(id) OR events < :events",
        ExpressionAttributeValues: { ":events": sum.events },
      }),
    );
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    // A snapshot at least as new is there already.
  }
}

/**
 * Looks at a key's shards in order: cached full ones, then what the batch read, then reads
 * ahead in growing windows (one BatchGetItem each), so a cold start walks many full shards in
 * few calls.
 */
class ShardWalk {
  readonly #ahead = new Map<string, Record<string, unknown> | undefined>();
  readonly closed: ClosedShards;
  readonly table: string;
  readonly key: string;
  #window = 1;

  constructor(closed: ClosedShards, table: string, key: string, prefetched: PrefetchedItems) {
    this.closed = closed;
    this.table = table;
    this.key = key;
    for (const [id, item] of prefetched) if (id.startsWith(`${key}#`)) this.#ahead.set(id, item);
  }

  async look(n: number): Promise<Shard | undefined> {
    const id = shardKey(this.key, n);
    const cached = this.closed.cached(this.table, id);
    if (cached !== undefined) return cached;
    if (!this.#ahead.has(id)) {
      const ids = Array.from({ length: this.#window }, (_, i) => shardKey(this.key, n + i));
      for (const [read, item] of await readItems(this.table, ids)) this.#ahead.set(read, item);
      this.#window = Math.min(this.#window * 2, 64);
    }
    const shard = this.#ahead.get(id) as Shard | undefined;
    if (shard !== undefined && this.closed.isFull(shard)) this.closed.remember(this.table, shard);
    return shard;
  }
}

/**
 * Full shards, which never change again, kept (ids included) so they are never read twice. The
 * cache is bounded by the ids' bytes (64 MiB).
 */
class ClosedShards {
  readonly #cache = new Map<string, Shard>();
  #bytes = 0;
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  isFull(shard: Shard): boolean {
    return (shard.bytes ?? 0) > this.capacity;
  }

  cached(table: string, id: string): Shard | undefined {
    return this.#cache.get(`${table}/${id}`);
  }

  /** The first shard of a key not known to be full: where its new events go, as far as this process knows. */
  firstUnknown(table: string, key: string): number {
    let n = 0;
    while (this.cached(table, shardKey(key, n)) !== undefined) n += 1;
    return n;
  }

  remember(table: string, shard: Shard): void {
    if (this.cached(table, shard.id) !== undefined) return;
    while (this.#bytes > 64 * 1024 * 1024 && this.#cache.size > 0) {
      const [oldest, evicted] = this.#cache.entries().next().value as [string, Shard];
      this.#cache.delete(oldest);
      this.#bytes -= evicted.bytes ?? 0;
    }
    this.#cache.set(`${table}/${shard.id}`, shard);
    this.#bytes += shard.bytes ?? 0;
  }

  /** Reads a shard (undefined: absent); a full one is kept. */
  async read(table: string, id: string): Promise<Shard | undefined> {
    const shard = (await readItems(table, [id])).get(id) as Shard | undefined;
    if (shard !== undefined && this.isFull(shard)) this.remember(table, shard);
    return shard;
  }
}
