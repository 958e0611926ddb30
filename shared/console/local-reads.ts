/**
 * What the local console reads besides the stream: the runner's checkpoints, queue depths,
 * table item counts and recent command outcomes, each with a bound on the work it does.
 */
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient, sqsClient } from "../aws/clients.ts";
import type { CommandView } from "./source.ts";

/** The local runner's Kinesis checkpoints: `<functionId>#<shardId>` → sequence number (or SHARD_END). */
export async function readCheckpoints(table: string): Promise<Map<string, string>> {
  const checkpoints = new Map<string, string>();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamoClient().send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    for (const item of page.Items ?? []) {
      if (typeof item.id === "string" && typeof item.sequenceNumber === "string") {
        checkpoints.set(item.id, item.sequenceNumber);
      }
    }
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return checkpoints;
}

/** A queue's messages: visible (waiting) and in flight (received, not yet deleted). */
export async function queueDepth(url: string): Promise<{ visible: number; inFlight: number }> {
  const result = await sqsClient().send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return {
    visible: Number(result.Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(result.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

/** Counts a table's items, stopping after `cap` (then `atLeast`). */
export async function countItems(table: string, cap: number): Promise<{ count: number; atLeast: boolean }> {
  let count = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamoClient().send(
      new ScanCommand({ TableName: table, Select: "COUNT", ExclusiveStartKey: start }),
    );
    count += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start !== undefined && count < cap);
  return { count, atLeast: start !== undefined };
}

/** Up to `cap` items of a table (a scan: no order). */
async function scanItems(table: string, cap: number): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamoClient().send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start !== undefined && items.length < cap);
  return items;
}

/**
 * The most recent commands: those the API took (its commands table) and every outcome the
 * services' command handlers recorded (reactors' commands too), newest first. Each table is
 * read up to `cap` items, so on a large table this is "recent among those read".
 */
export async function recentCommands(
  apiTable: string | undefined,
  outcomeTables: ReadonlyMap<string, string>,
  limit: number,
  cap = 5_000,
): Promise<CommandView[]> {
  const [apiItems, ...outcomeItems] = await Promise.all([
    apiTable === undefined ? Promise.resolve([]) : scanItems(apiTable, cap),
    ...[...outcomeTables].map(async ([service, table]) =>
      (await scanItems(table, cap)).map((item) => ({ service, item })),
    ),
  ]);
  const viaApi = new Map(apiItems.map((item) => [String(item.id), item]));
  const views = new Map<string, CommandView>();
  for (const { service, item } of outcomeItems.flat()) {
    if (typeof item.status !== "string" || typeof item.id !== "string") continue;
    const received = viaApi.get(item.id);
    const events = Array.isArray(item.events)
      ? (item.events as { type: string; version: number }[]).map((e) => ({ type: e.type, version: e.version }))
      : undefined;
    views.set(item.id, {
      commandId: item.id,
      service,
      command: String(item.command ?? received?.command ?? "?"),
      aggregateId: String(item.aggregateId ?? received?.aggregateId ?? "?"),
      origin: received === undefined ? "reactor" : "api",
      status: item.status as CommandView["status"],
      at: String(received?.receivedAt ?? item.updatedAt ?? ""),
      ...(events ? { events } : {}),
      ...(typeof item.reason === "string" ? { reason: item.reason } : {}),
    });
  }
  // Taken by the API, not yet seen by a command handler.
  for (const [id, item] of viaApi) {
    if (views.has(id)) continue;
    views.set(id, {
      commandId: id,
      service: String(item.service),
      command: String(item.command),
      aggregateId: String(item.aggregateId),
      origin: "api",
      status: "pending",
      at: String(item.receivedAt ?? ""),
    });
  }
  return [...views.values()].sort((a, b) => b.at.localeCompare(a.at)).slice(0, limit);
}
