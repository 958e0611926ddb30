/**
 * Where a replay stands, kept in the projection's own table (law F: a replay writes nothing but
 * its table), so a replay stopped by kill -9 or a Lambda timeout resumes from there:
 *
 * - the arbitration heads (one per aggregate ever seen) as scratch items
 *   `replay#<replayId>#<generation>#<part>` (gzip JSON, below DynamoDB's 400 KB an item), a new
 *   generation at each checkpoint, the one before dropped once nothing points at it;
 * - locally, the checkpoint itself as the item `replay#checkpoint` (per shard the last sequence
 *   number applied, the heads' generation, totals). On AWS the warm-up's state machine carries
 *   it instead, as the replayer's cursor (shared/handlers/replayer.ts).
 *
 * The runtime's and the projections' own keys never hold "#" at this place.
 */
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { BatchWriteCommand, DeleteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { unprocessedRetry } from "../aws/batch.ts";
import { dynamoClient } from "../aws/clients.ts";
import type { AggregateHead } from "../events/arbitrate.ts";
import { IncompleteError, retry } from "../retry.ts";

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** A generation of heads in the table (`parts` 0: none). */
export interface HeadsRef {
  readonly generation: number;
  readonly parts: number;
}

/** Thrown when a checkpoint names scratch items that are gone (a chunk retried after its replay finished). */
export class ReplayStateMissingError extends Error {
  override name = "ReplayStateMissingError";
  readonly code = "replay_state_missing" as const;
}

const headsKey = (replayId: string, generation: number, part: number) => `replay#${replayId}#${generation}#${part}`;
/** Below DynamoDB's 400 KB an item. */
const partBytes = 350_000;

/** Reads a generation of heads back (an empty map for `parts` 0). */
export async function loadHeads(table: string, replayId: string, ref: HeadsRef): Promise<Map<string, AggregateHead>> {
  if (ref.parts === 0) return new Map();
  const chunks: Buffer[] = [];
  for (let part = 0; part < ref.parts; part++) {
    const id = headsKey(replayId, ref.generation, part);
    const item = await dynamoClient().send(new GetCommand({ TableName: table, Key: { id }, ConsistentRead: true }));
    const data = item.Item?.data as Uint8Array | undefined;
    if (data === undefined) {
      throw new ReplayStateMissingError(`replay ${replayId}: scratch item ${id} is gone; start a new replay`);
    }
    chunks.push(Buffer.from(data));
  }
  const entries = JSON.parse((await gunzipAsync(Buffer.concat(chunks))).toString("utf8")) as [string, number, string][];
  return new Map(entries.map(([key, version, lastCommitId]) => [key, { version, lastCommitId }]));
}

/** Writes the heads as generation `generation`; returns its reference. */
export async function saveHeads(
  table: string,
  replayId: string,
  generation: number,
  heads: ReadonlyMap<string, AggregateHead>,
): Promise<HeadsRef> {
  const entries = [...heads].map(([key, head]) => [key, head.version, head.lastCommitId]);
  const body = await gzipAsync(Buffer.from(JSON.stringify(entries)));
  const parts: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += partBytes) parts.push(body.subarray(offset, offset + partBytes));
  await batchWrite(
    table,
    parts.map((data, part) => ({
      PutRequest: { Item: { id: headsKey(replayId, generation, part), kind: "replay-heads", data } },
    })),
  );
  return { generation, parts: parts.length };
}

/** Deletes generations of heads (undefined entries skipped). */
export async function dropHeads(
  table: string,
  replayId: string,
  refs: readonly (HeadsRef | undefined)[],
): Promise<void> {
  const deletes = refs.flatMap((ref) =>
    ref === undefined
      ? []
      : Array.from({ length: ref.parts }, (_, part) => ({
          DeleteRequest: { Key: { id: headsKey(replayId, ref.generation, part) } },
        })),
  );
  await batchWrite(table, deletes);
}

// --- The local checkpoint item.

/** A local replay's checkpoint, as kept in its table. */
export interface LocalCheckpoint {
  readonly replayId: string;
  /** Per shard, the last sequence number applied: everything up to it is in the table. */
  readonly positions: Readonly<Record<string, string>>;
  readonly heads: HeadsRef;
  readonly events: number;
  readonly objects: number;
  readonly bytes: number;
  readonly startedAt: string;
  readonly updatedAt: string;
}

const checkpointKey = "replay#checkpoint";

export async function readLocalCheckpoint(table: string): Promise<LocalCheckpoint | undefined> {
  const item = await dynamoClient().send(
    new GetCommand({ TableName: table, Key: { id: checkpointKey }, ConsistentRead: true }),
  );
  return item.Item?.checkpoint === undefined
    ? undefined
    : (JSON.parse(String(item.Item.checkpoint)) as LocalCheckpoint);
}

export async function writeLocalCheckpoint(table: string, checkpoint: LocalCheckpoint): Promise<void> {
  await dynamoClient().send(
    new PutCommand({
      TableName: table,
      Item: { id: checkpointKey, kind: "replay-checkpoint", checkpoint: JSON.stringify(checkpoint) },
    }),
  );
}

/** Removes a local replay's checkpoint and its heads. */
export async function clearLocalCheckpoint(table: string, checkpoint: LocalCheckpoint): Promise<void> {
  await dynamoClient().send(new DeleteCommand({ TableName: table, Key: { id: checkpointKey } }));
  await dropHeads(table, checkpoint.replayId, [checkpoint.heads]);
}

type WriteRequest = NonNullable<NonNullable<BatchWriteCommand["input"]["RequestItems"]>[string]>[number];

/** BatchWriteItem in groups of 25, retrying what DynamoDB leaves unprocessed. */
async function batchWrite(table: string, requests: readonly WriteRequest[]): Promise<void> {
  for (let i = 0; i < requests.length; i += 25) {
    let pending: WriteRequest[] = requests.slice(i, i + 25);
    // Waits from 0–200 ms, doubling: the scratch writes come in bursts as large as a checkpoint.
    await retry(
      async () => {
        const result = await dynamoClient().send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
        pending = result.UnprocessedItems?.[table] ?? [];
        if (pending.length > 0) throw new IncompleteError(`replay scratch: ${pending.length} writes unprocessed`);
      },
      { ...unprocessedRetry, baseMs: 200 },
    );
  }
}
