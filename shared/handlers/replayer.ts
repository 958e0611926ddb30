/**
 * The replayer: a projection's warm-up from the archive on AWS (laws H and I, invariant 7), one
 * bounded chunk per invocation. Its warm-up job (infra/warm-up.ts, a Step Functions state
 * machine) calls it again and again with the cursor the last chunk returned, so a replay of
 * any length fits Lambda's 15 minutes, and attaches the projection's consumer once it answers
 * `done`.
 *
 * A chunk reads the archive in stream order (shards by lineage, each by sequence number),
 * arbitrates every commit with the relay's pure function (shared/events/arbitrate.ts), upcasts
 * the accepted events the projection subscribes to, and feeds them to the projection's own SQS
 * handler in SQS-shaped batches, aggregates spread over lanes, like `replayIntoProjection`
 * (shared/archive/replay.ts). It takes whole archive objects until its time budget (about 10
 * minutes) is spent, so the cursor is always "everything up to this sequence number, per
 * shard". The projection's idempotency makes a retried chunk, or the overlap with the
 * buffered queue, harmless (invariant 3).
 *
 * The arbitration heads (one per aggregate ever seen) outgrow what a cursor can carry through
 * Step Functions (256 KiB a state). They are kept as scratch items in the projection's own
 * table (`replay#<replayId>#<generation>#<part>`, gzip JSON, the same table the runtime already
 * keeps its `parked#` items in), one generation per chunk, each chunk deleting the generation
 * before last, and all of them when the replay is done. The archive bucket stays read-only to a
 * replayer: a projection's job writes nothing but its table (law F).
 *
 * `done` means the archive has passed the subscription point: for every shard, the first
 * record after the archive's watermark arrived at or after `subscribedAt` (or there is none),
 * checked before the chunk lists the archive, so every record before the subscription point is
 * in an object this chunk saw, and this chunk applied all of them. Why that is enough: the
 * projection's queue was subscribed before `subscribedAt`, and a record appended to the stream
 * after that is relayed (published) after it, so it reaches the queue's buffer; the replay only
 * owes the records appended before.
 */
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { Logger } from "@aws-lambda-powertools/logger";
import { BatchWriteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import type { Context, Handler, SQSHandler } from "aws-lambda";
import { compareSequence } from "../archive/layout.ts";
import { listArchive, readObject } from "../archive/reader.ts";
import { deliver, laneOf } from "../archive/replay.ts";
import { archivePassed } from "../archive/watermark.ts";
import { dynamoClient } from "../aws/clients.ts";
import { optionalEnv, requireEnv } from "../env.ts";
import { type AggregateHead, arbiter, reachesReaders } from "../events/arbitrate.ts";
import type { EventEnvelope } from "../events/envelope.ts";
import { type Upcaster, upcast } from "../events/upcast.ts";
import { envNames } from "../plan.ts";

const logger = new Logger({ serviceName: "canon-replayer" });
const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Where a replay stands between two chunks. Opaque to the state machine, which only passes it on. */
export interface ReplayCursor {
  /** Names this replay's scratch items in the projection's table. */
  readonly replayId: string;
  /** Per shard, the last sequence number applied: everything up to it is done. */
  readonly positions: Readonly<Record<string, string>>;
  /** The arbitration heads' generation in the table (`parts` 0: none yet, or cleaned up). */
  readonly heads: HeadsRef;
  /** The generation before, kept until the next chunk: a retried chunk still reads it. */
  readonly previous?: HeadsRef;
  readonly startedAt: string;
  /** Totals so far, for progress and ETA. */
  readonly events: number;
  readonly objects: number;
  readonly bytes: number;
}

export interface HeadsRef {
  readonly generation: number;
  readonly parts: number;
}

export interface ReplayRequest {
  /** The last chunk's cursor; absent (or null) for the first chunk. */
  readonly cursor?: ReplayCursor | null;
  /** The subscription point (ISO 8601): the replay is done when the archive has passed it. */
  readonly subscribedAt: string;
}

export interface ReplayChunk {
  readonly done: boolean;
  readonly cursor: ReplayCursor;
  /** Events applied by this chunk. */
  readonly events: number;
}

export interface ReplayerOptions {
  /** The same upcasters the projection's consumer reads with (events/upcasters.ts). */
  readonly upcasters: readonly Upcaster[];
  /** Time one chunk spends taking new archive objects; the object under way finishes. @default 10 minutes */
  readonly chunkMs?: number;
  /** Stop taking objects when the invocation has less left than this. @default 3 minutes */
  readonly reserveMs?: number;
  /** Aggregates applied at once. @default 4 */
  readonly lanes?: number;
}

/** Scratch items of one replay in the projection's table: the runtime's own keys never hold "#" at this place. */
const headsKey = (replayId: string, generation: number, part: number) => `replay#${replayId}#${generation}#${part}`;
/** Below DynamoDB's 400 KB an item. */
const partBytes = 350_000;

/** Thrown when a cursor names scratch items that are gone (a chunk retried after its replay finished). */
export class ReplayStateMissingError extends Error {
  override name = "ReplayStateMissingError";
}

interface Config {
  readonly table: string;
  readonly bus: string;
  readonly bucket: string;
  readonly streamName: string;
  readonly eventTypes: ReadonlySet<string>;
  readonly name: string;
}

function readConfig(): Config {
  const events: unknown = JSON.parse(requireEnv(envNames.projectionEvents));
  if (!Array.isArray(events) || !events.every((e) => typeof e === "string")) {
    throw new Error(`${envNames.projectionEvents} must be a JSON list of event types`);
  }
  return {
    table: requireEnv(envNames.table),
    bus: requireEnv(envNames.bus),
    bucket: requireEnv(envNames.archiveBucket),
    streamName: requireEnv(envNames.streamName),
    eventTypes: new Set(events),
    name: optionalEnv(envNames.consumerFunction, "projection"),
  };
}

/**
 * The replayer's Lambda handler for a projection, from the projection's own SQS handler:
 * `export const replay = replayerFor(handler, { upcasters })` in the projection's module.
 */
export function replayerFor(handler: SQSHandler, options: ReplayerOptions): Handler<ReplayRequest, ReplayChunk> {
  return async (request: ReplayRequest, context: Context): Promise<ReplayChunk> => {
    const started = Date.now();
    const config = readConfig();
    const subscribedAt = new Date(request.subscribedAt);
    if (Number.isNaN(subscribedAt.getTime())) throw new Error(`subscribedAt "${request.subscribedAt}" is not a time`);
    const cursor = request.cursor ?? freshCursor();
    const chunkMs = options.chunkMs ?? 10 * 60_000;
    const reserveMs = options.reserveMs ?? 3 * 60_000;
    const outOfTime = () => Date.now() - started >= chunkMs || context.getRemainingTimeInMillis() < reserveMs;

    // Asked before the archive is listed: every record it finds below a watermark sits in an
    // object written before the manifest moved, so the listing below holds it.
    const handover = await archivePassed({
      bucket: config.bucket,
      bus: config.bus,
      streamName: config.streamName,
      moment: subscribedAt,
    });
    const shards = await listArchive(config.bucket, config.bus);
    const heads = await loadHeads(config.table, cursor);
    const run = arbiter(heads);
    const positions = new Map(Object.entries(cursor.positions));

    let events = 0;
    let objects = 0;
    let bytes = 0;
    let complete = true;
    walk: for (const { shard, objects: list } of shards) {
      for (const object of list) {
        const position = positions.get(shard);
        if (position !== undefined && compareSequence(object.last, position) <= 0) continue;
        if (objects > 0 && outOfTime()) {
          complete = false;
          break walk;
        }
        let last = position;
        const accepted: EventEnvelope[] = [];
        for (const record of await readObject(config.bucket, object.key)) {
          // A batch retried with other boundaries archived some records twice: each is read once.
          if (last !== undefined && compareSequence(record.sequenceNumber, last) <= 0) continue;
          last = record.sequenceNumber;
          const commit = record.commit;
          if (commit === undefined) continue;
          if (!reachesReaders(run.judge(commit))) continue;
          for (const event of commit.events) {
            if (config.eventTypes.has(event.type)) accepted.push(upcast(event, options.upcasters));
          }
        }
        await applyInLanes({ handler, name: config.name }, accepted, options.lanes ?? 4);
        if (last !== undefined) positions.set(shard, last);
        events += accepted.length;
        objects += 1;
        bytes += object.size;
      }
    }

    const done = handover.passed && complete;
    const totals = {
      events: cursor.events + events,
      objects: cursor.objects + objects,
      bytes: cursor.bytes + bytes,
    };
    let next: ReplayCursor;
    if (done) {
      await dropHeads(config.table, cursor.replayId, [cursor.heads, cursor.previous]);
      next = {
        replayId: cursor.replayId,
        startedAt: cursor.startedAt,
        ...totals,
        positions: Object.fromEntries(positions),
        heads: { generation: cursor.heads.generation + 1, parts: 0 },
      };
    } else if (objects > 0) {
      const generation = cursor.heads.generation + 1;
      const parts = await saveHeads(config.table, cursor.replayId, generation, heads);
      await dropHeads(config.table, cursor.replayId, [cursor.previous]);
      next = {
        ...cursor,
        ...totals,
        positions: Object.fromEntries(positions),
        heads: { generation, parts },
        previous: cursor.heads,
      };
    } else {
      next = cursor; // nothing new: the archiver has not caught up with the subscription point yet
    }

    const total = shards.reduce((sum, s) => sum + s.objects.reduce((n, o) => n + o.size, 0), 0);
    const doneBytes = shards.reduce(
      (sum, s) =>
        sum +
        s.objects
          .filter((o) => positions.has(s.shard) && compareSequence(o.last, positions.get(s.shard) as string) <= 0)
          .reduce((n, o) => n + o.size, 0),
      0,
    );
    const elapsed = (Date.now() - Date.parse(cursor.startedAt)) / 1000;
    const rate = next.bytes / Math.max(elapsed, 0.001);
    logger.info("replay chunk", {
      projection: config.name,
      done,
      events,
      objects,
      totalEvents: next.events,
      archiveBytes: total,
      replayedBytes: doneBytes,
      percent: total === 0 ? 100 : Math.floor((100 * doneBytes) / total),
      etaSeconds: rate > 0 ? Math.ceil((total - doneBytes) / rate) : undefined,
      waitingOnShards: handover.waitingOn,
    });
    return { done, cursor: next, events };
  };
}

function freshCursor(): ReplayCursor {
  return {
    replayId: randomUUID(),
    positions: {},
    heads: { generation: 0, parts: 0 },
    startedAt: new Date().toISOString(),
    events: 0,
    objects: 0,
    bytes: 0,
  };
}

/** Applies events to the projection in lanes by aggregate: in order per aggregate, lanes at once. */
async function applyInLanes(
  target: { handler: SQSHandler; name: string },
  events: readonly EventEnvelope[],
  laneCount: number,
): Promise<void> {
  const lanes: EventEnvelope[][] = Array.from({ length: Math.max(1, laneCount) }, () => []);
  for (const event of events) lanes[laneOf(`${event.aggregatetype}#${event.subject}`, lanes.length)]?.push(event);
  await Promise.all(
    lanes.map(async (lane) => {
      for (let i = 0; i < lane.length; i += 10) await deliver(target, lane.slice(i, i + 10));
    }),
  );
}

async function loadHeads(table: string, cursor: ReplayCursor): Promise<Map<string, AggregateHead>> {
  const { generation, parts } = cursor.heads;
  if (parts === 0) return new Map();
  const chunks: Buffer[] = [];
  for (let part = 0; part < parts; part++) {
    const id = headsKey(cursor.replayId, generation, part);
    const item = await dynamoClient().send(new GetCommand({ TableName: table, Key: { id }, ConsistentRead: true }));
    const data = item.Item?.data as Uint8Array | undefined;
    if (data === undefined) {
      throw new ReplayStateMissingError(`replay ${cursor.replayId}: scratch item ${id} is gone; start a new replay`);
    }
    chunks.push(Buffer.from(data));
  }
  const entries = JSON.parse((await gunzipAsync(Buffer.concat(chunks))).toString("utf8")) as [string, number, string][];
  return new Map(entries.map(([key, version, lastCommitId]) => [key, { version, lastCommitId }]));
}

/** Writes the heads as a new generation of scratch items; returns how many parts it took. */
async function saveHeads(
  table: string,
  replayId: string,
  generation: number,
  heads: ReadonlyMap<string, AggregateHead>,
): Promise<number> {
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
  return parts.length;
}

async function dropHeads(table: string, replayId: string, refs: readonly (HeadsRef | undefined)[]): Promise<void> {
  const deletes = refs.flatMap((ref) =>
    ref === undefined
      ? []
      : Array.from({ length: ref.parts }, (_, part) => ({
          DeleteRequest: { Key: { id: headsKey(replayId, ref.generation, part) } },
        })),
  );
  await batchWrite(table, deletes);
}

type WriteRequest = NonNullable<NonNullable<BatchWriteCommand["input"]["RequestItems"]>[string]>[number];

/** BatchWriteItem in groups of 25, retrying what DynamoDB leaves unprocessed. */
async function batchWrite(table: string, requests: readonly WriteRequest[]): Promise<void> {
  for (let i = 0; i < requests.length; i += 25) {
    let pending: WriteRequest[] = requests.slice(i, i + 25);
    for (let attempt = 1; pending.length > 0; attempt++) {
      const result = await dynamoClient().send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
      pending = result.UnprocessedItems?.[table] ?? [];
      if (pending.length > 0 && attempt >= 8) throw new Error(`replay scratch: ${pending.length} writes unprocessed`);
      if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    }
  }
}
