/**
 * DynamoDB batch reads and writes at the service's limits (100 keys a BatchGetItem, 25 items a
 * BatchWriteItem), with what DynamoDB leaves unprocessed retried after a backoff with jitter.
 * Every hop that reads or writes several items goes through these, never one call an item.
 */
import { BatchGetCommand, BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { IncompleteError, isIncomplete, type RetryPolicy, retry } from "../retry.ts";
import { dynamoClient } from "./clients.ts";

type Item = Record<string, unknown>;

/**
 * Calls for what DynamoDB leaves unprocessed before giving up (waits from 0–100 ms, doubling).
 * Only the unprocessed rest is retried here: a failed call is the SDK's to retry, and passes through.
 */
export const unprocessedRetry: RetryPolicy = { attempts: 8, baseMs: 100, retryable: isIncomplete };

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
      let pending: Record<string, { Keys: Item[]; ConsistentRead: boolean }> = request(chunk);
      await retry(async () => {
        const result = await dynamoClient().send(new BatchGetCommand({ RequestItems: pending }));
        for (const [table, items] of Object.entries(result.Responses ?? {})) {
          found.get(table)?.push(...(items as Item[]));
        }
        pending = (result.UnprocessedKeys ?? {}) as typeof pending;
        if (Object.keys(pending).length === 0) return;
        const left = Object.values(pending).reduce((n, r) => n + r.Keys.length, 0);
        throw new IncompleteError(`BatchGetItem left ${left} keys unprocessed in ${Object.keys(pending).join(", ")}`);
      }, unprocessedRetry);
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
      let pending = chunk.map((item) => ({ PutRequest: { Item: item } }));
      await retry(async () => {
        const result = await dynamoClient().send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
        pending = (result.UnprocessedItems?.[table] ?? []) as typeof pending;
        if (pending.length > 0)
          throw new IncompleteError(`BatchWriteItem left ${pending.length} items unprocessed in ${table}`);
      }, unprocessedRetry);
    }),
  );
}
