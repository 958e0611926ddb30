/**
 * Counter projections: items fed by many aggregates (e.g. totals per day), exact under
 * duplicates, redeliveries and replays, without transactions.
 *
 * Versions cannot tell a duplicate here (many aggregates feed one item), so each item remembers
 * the ids of the events it counted, and counting is one UpdateItem that adds the amounts and the
 * event id together, on condition the id is not there yet: atomic on a single item.
 *
 * Bound: a DynamoDB item holds 400 KB, so the ids live in shard items `<key>#<n>`, each taking
 * ids until it holds `shardBytes` of them (default 32 KiB: about 800 typical 40-byte ids; an id
 * is at most 200 characters, so no shard passes `shardBytes` + 800 bytes). A full shard never
 * changes again, so the next one opens. An event is counted in the first shard that is not
 * full, on condition it is in none of them: the full ones are checked first (cached, being
 * immutable), the open one by the condition. DynamoDB bills a write by the item's size, so
 * `shardBytes` trades write and read units per event (about shardBytes/2 KiB on average)
 * against the number of shards a key ends up with (a million events a day: ~1,250 shards).
 *
 * The view item `<key>` (what the API serves) is the sum of the shards. It is rewritten after
 * every count, from a consistent snapshot (the full shards, then the open one); the write is
 * conditional on `events` (how many events the sum covers, which only grows), so a slower
 * writer with an older snapshot cannot overwrite a newer sum. A crash between the count and the
 * sum is healed by the redelivery, which finds its id counted and rewrites the sum.
 */
import { GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient } from "../aws/clients.ts";
import { isConditionalCheckFailed } from "../aws/errors.ts";
import type { EventEnvelope } from "../events/envelope.ts";
import { defaultParkAfterReceives, type ProjectionDefinition } from "./projection.ts";

/** A projection of counters per key, fed by any number of aggregates. */
export interface CounterProjection {
  readonly name: string;
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

interface Shard {
  readonly id: string;
  readonly shard: number;
  readonly applied?: Set<string>;
  readonly bytes?: number;
  readonly events?: number;
  readonly [counter: string]: unknown;
}

/** Builds the definition of a counter projection. */
export function counterProjection(view: CounterProjection): ProjectionDefinition {
  const capacity = view.shardBytes ?? 32_768;
  if (!(Number.isInteger(capacity) && capacity > 0 && capacity <= 380_000 - maxIdBytes)) {
    throw new Error(`${view.name}: shardBytes must be an integer from 1 to ${380_000 - maxIdBytes}`);
  }
  const closed = new ClosedShards();
  return {
    name: view.name,
    parkAfterReceives: view.parkAfterReceives ?? defaultParkAfterReceives,
    async apply(event, target) {
      const key = view.key(event);
      if (key === undefined) return;
      if (key.includes("#")) throw new Error(`${view.name}: key "${key}" contains "#"`);
      const amounts = view.add(event);
      for (const [name, amount] of Object.entries(amounts)) {
        if (reserved.has(name)) throw new Error(`${view.name}: "${name}" is not a counter name`);
        if (!Number.isSafeInteger(amount)) throw new Error(`${view.name}: ${name} must be an integer, not ${amount}`);
      }
      await count(target.table, key, event.id, amounts, capacity, closed);
      await writeSum(target.table, key, view.initial(key), capacity, closed);
    },
  };
}

const shardKey = (key: string, n: number) => `${key}#${n}`;

/** Counts one event into the key's open shard, unless a shard has it already. */
async function count(
  table: string,
  key: string,
  eventId: string,
  amounts: Readonly<Record<string, number>>,
  capacity: number,
  closed: ClosedShards,
): Promise<void> {
  const names: Record<string, string> = { "#key": "key", "#shard": "shard" };
  const values: Record<string, unknown> = {
    ":ids": new Set([eventId]),
    ":id": eventId,
    ":one": 1,
    ":bytes": Buffer.byteLength(eventId),
    ":room": capacity,
    ":key": key,
  };
  const adds = ["applied :ids", "events :one", "bytes :bytes"];
  Object.entries(amounts).forEach(([name, amount], i) => {
    names[`#c${i}`] = name;
    values[`:c${i}`] = amount;
    adds.push(`#c${i} :c${i}`);
  });
  for (let n = 0; ; ) {
    const full = closed.cached(table, shardKey(key, n));
    if (full !== undefined) {
      if (full.applied?.has(eventId)) return; // counted before this shard filled up
      n += 1;
      continue;
    }
    try {
      await dynamoClient().send(
        new UpdateCommand({
          TableName: table,
          Key: { id: shardKey(key, n) },
          UpdateExpression: `SET #shard = :n, #key = :key ADD ${adds.join(", ")}`,
          ConditionExpression:
            "(attribute_not_exists(applied) OR NOT contains(applied, :id)) AND (attribute_not_exists(bytes) OR bytes <= :room)",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ...values, ":n": n },
        }),
      );
      return;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
    // Counted already, or full: look (a full shard is cached, and the walk moves past it).
    const shard = await closed.read(table, shardKey(key, n), capacity);
    if (shard?.applied?.has(eventId)) return;
  }
}

/**
 * Rewrites the key's view item from a consistent snapshot of its shards: the full ones (never
 * changing again), then the first that is not full. No shard after that one can exist yet (a
 * shard opens only once the one before is full), so the snapshot is the state at the moment the
 * open shard was read; `events` orders such states.
 */
async function writeSum(
  table: string,
  key: string,
  initial: Readonly<Record<string, string | number>>,
  capacity: number,
  closed: ClosedShards,
): Promise<void> {
  const shards: Shard[] = [];
  for (let n = 0; ; n++) {
    const shard = closed.cached(table, shardKey(key, n)) ?? (await closed.read(table, shardKey(key, n), capacity));
    if (shard === undefined) break;
    shards.push(shard);
    if ((shard.bytes ?? 0) <= capacity) break;
  }
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
 * Reads shards. A full shard never changes again, so it is kept (ids included) and never read
 * twice. The cache is bounded by the ids' bytes (64 MiB).
 */
class ClosedShards {
  readonly #cache = new Map<string, Shard>();
  #bytes = 0;

  cached(table: string, id: string): Shard | undefined {
    return this.#cache.get(`${table}/${id}`);
  }

  /** Reads a shard (undefined: absent); a full one is read whole and cached. */
  async read(table: string, id: string, capacity: number): Promise<Shard | undefined> {
    const result = await dynamoClient().send(new GetCommand({ TableName: table, Key: { id }, ConsistentRead: true }));
    const shard = result.Item as Shard | undefined;
    if (shard === undefined || (shard.bytes ?? 0) <= capacity) return shard;
    while (this.#bytes > 64 * 1024 * 1024 && this.#cache.size > 0) {
      const [oldest, evicted] = this.#cache.entries().next().value as [string, Shard];
      this.#cache.delete(oldest);
      this.#bytes -= evicted.bytes ?? 0;
    }
    this.#cache.set(`${table}/${id}`, shard);
    this.#bytes += shard.bytes ?? 0;
    return shard;
  }
}
