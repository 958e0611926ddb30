/**
 * Where a replay's events go (replay-engine.ts):
 *
 * - `foldSink`, for an aggregate projection: its own fold, in memory. Items are read once with
 *   their aggregate's park head (100 keys a BatchGetItem), kept in a bounded cache, folded event by event, and written when the
 *   engine makes its progress durable: facts first, then the items, 25 a BatchWriteItem, a few
 *   calls at once, under the write limit. An item moves past an event only once the event's
 *   facts are stored, as live. The writes are unconditional: a replay is its table's only writer
 *   (see replay-engine.ts). An event the fold cannot apply, or an aggregate found parked (by an
 *   earlier attempt), sends the aggregate from there on through the projection's handler, one
 *   event at a time, which retries, parks and queues behind its park as live.
 * - `deliverySink`, for any other projection: its handler, with SQS-shaped batches of up to
 *   1,000 events across archive objects (the runtime applies their aggregates at once, each in
 *   order), delivered when the engine flushes.
 */
import { batchPutItems } from "../aws/batch.ts";
import type { EventEnvelope } from "../events/envelope.ts";
import { parkHeadKey } from "../handlers/parking.ts";
import {
  type AggregateFold,
  changesNothing,
  evolveItem,
  type ProjectionHandler,
  readItems,
  type VersionedItem,
} from "../handlers/projection.ts";
import type { RateLimit } from "./rate-limit.ts";
import { deliver } from "./replay-delivery.ts";

export interface ReplaySink {
  /** Applies one archive object's accepted events, in stream order. */
  apply(events: readonly EventEnvelope[]): Promise<void>;
  /** Makes everything applied so far durable in the table. */
  flush(): Promise<void>;
  /** Writes held in memory; the engine flushes early once they reach `flushAt`. */
  readonly pending: number;
  readonly flushAt: number;
}

/** BatchWriteItem calls in flight at once. */
const writeConcurrency = 4;
/** Events a handler gets per call at most. */
const deliveryBatch = 1_000;

export function deliverySink(options: {
  readonly handler: ProjectionHandler;
  readonly name: string;
  readonly writes: RateLimit;
}): ReplaySink {
  let held: EventEnvelope[] = [];
  return {
    get pending() {
      return held.length;
    },
    flushAt: deliveryBatch,
    async flush() {
      // One call for many objects' events (the runtime applies their aggregates at once, each in
      // order): items many aggregates share, like counters, then take one write per batch.
      const batch = held;
      held = [];
      for (let i = 0; i < batch.length; i += deliveryBatch) {
        const slice = batch.slice(i, i + deliveryBatch);
        await options.writes.take(slice.length);
        await deliver(options, slice);
      }
    },
    async apply(events) {
      held.push(...events);
    },
  };
}

interface Cached {
  item: VersionedItem | undefined;
  dirty: boolean;
}

export function foldSink(options: {
  readonly table: string;
  readonly fold: AggregateFold<VersionedItem>;
  /** Applies what the fold could not (then retries and parks it as live). */
  readonly handler: ProjectionHandler;
  readonly name: string;
  readonly writes: RateLimit;
  readonly cacheItems: number;
}): ReplaySink {
  const { fold, table } = options;
  const cache = new Map<string, Cached>();
  let dirty = 0;
  let facts: Record<string, unknown>[] = [];
  /** Aggregates (message groups) the fold gave up on: the handler applies the rest of their events. */
  const diverted = new Set<string>();

  const writeAll = async (items: readonly Record<string, unknown>[]) => {
    const chunks: Record<string, unknown>[][] = [];
    for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
    let next = 0;
    await Promise.all(
      Array.from({ length: writeConcurrency }, async () => {
        while (next < chunks.length) {
          const chunk = chunks[next++] as Record<string, unknown>[];
          await options.writes.take(chunk.length);
          await batchPutItems(table, chunk);
        }
      }),
    );
  };

  const flush = async () => {
    // Facts first: an item moves past an event only once the event's facts are stored.
    const unique = [...new Map(facts.map((fact) => [String(fact.id), fact])).values()];
    await writeAll(unique);
    facts = [];
    const changed: VersionedItem[] = [];
    for (const entry of cache.values()) {
      if (entry.dirty && entry.item !== undefined) changed.push(entry.item);
    }
    await writeAll(changed as unknown as Record<string, unknown>[]);
    for (const entry of cache.values()) entry.dirty = false;
    dirty = 0;
    // Oldest first: the cache is in order of last use.
    for (const key of cache.keys()) {
      if (cache.size <= options.cacheItems) break;
      cache.delete(key);
    }
  };

  return {
    get pending() {
      return dirty + facts.length;
    },
    flushAt: 25_000,
    flush,
    async apply(events) {
      const handled = events.filter((event) => fold.handles(event));
      /** Item keys to read, with their aggregate's message group. */
      const missing = new Map<string, string>();
      const keys = new Map<EventEnvelope, string | Error>();
      for (const event of handled) {
        let key: string | Error;
        try {
          key = fold.key(event);
        } catch (error) {
          key = error instanceof Error ? error : new Error(String(error));
        }
        keys.set(event, key);
        if (typeof key === "string" && !cache.has(key) && !diverted.has(groupOf(event)))
          missing.set(key, groupOf(event));
      }
      if (missing.size > 0) {
        // With each item, its aggregate's park head (as the live runtime reads them): a parked
        // aggregate's events go behind its park, through the handler.
        const read = await readItems(
          table,
          [...missing].flatMap(([key, group]) => [key, parkHeadKey(group)]),
        );
        for (const [key, group] of missing) {
          if (read.get(parkHeadKey(group)) !== undefined) diverted.add(group);
          else cache.set(key, { item: read.get(key) as VersionedItem | undefined, dirty: false });
        }
      }
      const slow: EventEnvelope[] = [];
      for (const event of handled) {
        const group = groupOf(event);
        const key = keys.get(event) as string | Error;
        if (diverted.has(group) || typeof key !== "string") {
          diverted.add(group);
          slow.push(event);
          continue;
        }
        const entry = cache.get(key);
        if (entry === undefined) {
          diverted.add(group); // its item was not read: a key shared by a parked aggregate
          slow.push(event);
          continue;
        }
        // Last used last: move it to the end of the cache's order.
        cache.delete(key);
        cache.set(key, entry);
        if (changesNothing(entry.item, event)) continue; // applied already
        let next: VersionedItem;
        let added: readonly Record<string, unknown>[];
        try {
          next = evolveItem(fold, key, entry.item, event);
          added = fold.facts(event);
        } catch {
          diverted.add(group);
          slow.push(event);
          continue;
        }
        facts.push(...added);
        entry.item = next;
        if (!entry.dirty) dirty += 1;
        entry.dirty = true;
      }
      if (slow.length === 0) return;
      // The handler reads the table: what the fold holds goes there first; then the diverted
      // aggregates' events one by one, in order, through the live runtime.
      await flush();
      const byGroup = new Map<string, EventEnvelope[]>();
      for (const event of slow) byGroup.set(groupOf(event), [...(byGroup.get(groupOf(event)) ?? []), event]);
      await Promise.all(
        [...byGroup.values()].map(async (run) => {
          for (const event of run) {
            await options.writes.take(1);
            await deliver(options, [event]);
          }
        }),
      );
      for (const event of slow) {
        const key = keys.get(event);
        if (typeof key === "string") cache.delete(key); // the handler wrote it: the table has it now
      }
    },
  };
}

/** An event's message group, as the relay publishes it: its aggregate. */
function groupOf(event: EventEnvelope): string {
  return `${event.aggregatetype}#${event.subject}`;
}
