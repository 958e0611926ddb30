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
  const found: Item[] = [];
  const chunks: Item[][] = [];
  for (let i = 0; i < keys.length; i += 100) chunks.push(keys.slice(i, i + 100));
  await Promise.all(
    chunks.map(async (chunk) => {
      let pending: Item[] | undefined = chunk;
      for (let round = 0; pending !== undefined && pending.length > 0; round++) {
        if (round === maxRounds) throw new Error(`BatchGetItem left ${pending.length} keys unprocessed in ${table}`);
        if (round > 0) await backoff(round);
        const result = await dynamoClient().send(
          new BatchGetCommand({
            RequestItems: { [table]: { Keys: pending, ConsistentRead: options.consistent ?? true } },
          }),
        );
        found.push(...((result.Responses?.[table] as Item[] | undefined) ?? []));
        pending = result.UnprocessedKeys?.[table]?.Keys as Item[] | undefined;
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
