/**
 * DynamoDB batch reads and writes at the service's limits (100 keys a BatchGetItem, 25 items a
 * BatchWriteItem), with what DynamoDB leaves unprocessed retried after a backoff with jitter.
 * Every hop that reads or writes several items goes through these, never one call an item.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { BatchGetCommand, BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient } from "./clients.ts";

type Item = Record<string, unknown>;

/** Retries of unprocessed keys or items before giving up (backoff 25 ms doubling, with jitter). */
const maxRounds = 8;

const backoff = (round: number) => sleep(Math.round(25 * 2 ** round * (0.5 + Math.random())));

/** Reads the items with these keys (missing ones are simply absent); strongly consistent by default. */
export async function batchGetItems(
  table: string,
  keys: readonly Item[],
  options: { readonly consistent?: boolean } = {},
): Promise<Item[]> {
  return (await batchGetFromTables({ [table]: keys }, options)).get(table) ?? [];
}

/**
 * Reads items from several tables at once: one BatchGetItem carries up to 100 keys, whatever
 * tables they are in, so a handler that needs a few items of two tables pays one call, not two.
 * Returns each table's items found (missing ones are simply absent); strongly consistent by default.
 */
export async function batchGetFromTables(
  keysByTable: Readonly<Record<string, readonly Item[]>>,
  options: { readonly consistent?: boolean } = {},
): Promise<Map<string, Item[]>> {
  const found = new Map<string, Item[]>(Object.keys(keysByTable).map((table) => [table, []]));
  const all = Object.entries(keysByTable).flatMap(([table, keys]) => keys.map((key) => ({ table, key })));
  const chunks: { table: string; key: Item }[][] = [];
  for (let i = 0; i < all.length; i += 100) chunks.push(all.slice(i, i + 100));
  const request = (chunk: readonly { table: string; key: Item }[]) => {
    const byTable: Record<string, { Keys: Item[]; ConsistentRead: boolean }> = {};
    for (const { table, key } of chunk) {
      byTable[table] ??= { Keys: [], ConsistentRead: options.consistent ?? true };
      byTable[table].Keys.push(key);
    }
    return byTable;
  };
  await Promise.all(
    chunks.map(async (chunk) => {
      let pending: Record<string, { Keys: Item[]; ConsistentRead: boolean }> | undefined = request(chunk);
      for (let round = 0; pending !== undefined && Object.keys(pending).length > 0; round++) {
        if (round === maxRounds) {
          const left = Object.values(pending).reduce((n, r) => n + r.Keys.length, 0);
          throw new Error(`BatchGetItem left ${left} keys unprocessed in ${Object.keys(pending).join(", ")}`);
        }
        if (round > 0) await backoff(round);
        const result = await dynamoClient().send(new BatchGetCommand({ RequestItems: pending }));
        for (const [table, items] of Object.entries(result.Responses ?? {})) {
          found.get(table)?.push(...(items as Item[]));
        }
        pending = result.UnprocessedKeys as typeof pending;
      }
    }),
  );
  return found;
}

/** Writes whole items (PutRequest), 25 a call; order between them does not matter. */
export async function batchPutItems(table: string, items: readonly Item[]): Promise<void> {
  const chunks: Item[][] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  await Promise.all(
    chunks.map(async (chunk) => {
      let pending: { PutRequest: { Item: Item } }[] | undefined = chunk.map((item) => ({ PutRequest: { Item: item } }));
      for (let round = 0; pending !== undefined && pending.length > 0; round++) {
        if (round === maxRounds) throw new Error(`BatchWriteItem left ${pending.length} items unprocessed in ${table}`);
        if (round > 0) await backoff(round);
        const result = await dynamoClient().send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
        pending = result.UnprocessedItems?.[table] as typeof pending;
      }
    }),
  );
}
