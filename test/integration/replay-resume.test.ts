/**
 * The replay engine over the wire (shared/archive/replay-engine.ts), on an archive written in
 * the archive's own layout (bench/archive-generator.ts: accepted commits, retried duplicates,
 * lost races):
 *
 * - a replay killed with SIGKILL (a process of its own) resumes from the checkpoint it left in
 *   its table and ends equal to an uninterrupted one, for a projection folded in memory
 *   (balances) and for one fed through its handler (daily totals, a counter that would count a
 *   redelivered event twice if anything were applied twice);
 * - an event the fold cannot apply is parked with its aggregate through the live runtime, the
 *   aggregate's later events queue behind it, and a second replay keeps them there.
 */
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { type GeneratedArchive, generateArchive } from "../../bench/archive-generator.ts";
import { replayInChild } from "../../bench/replay-scale.ts";
import { type ArchivedRecord, objectKey } from "../../shared/archive/layout.ts";
import { replayIntoProjection } from "../../shared/archive/replay.ts";
import { s3Client } from "../../shared/aws/clients.ts";
import { createTableIfMissing, scanItems } from "../../shared/aws/tables.ts";
import { buildCommit } from "../../shared/events/envelope.ts";
import { useLocalCloud } from "../support/system.ts";

const local = useLocalCloud("replay-resume");
const bus = "core";
const bucket = "replay-resume-archive";
let archive: GeneratedArchive;

/**
 * What two tables must agree on: every view item, and for a counter, the events each key counted
 * (which shard holds which id depends on how batches fell, not on what was counted).
 */
function comparable(items: ReadonlyMap<string, Record<string, unknown>>) {
  const views = new Map<string, Record<string, unknown>>();
  const counted = new Map<string, string[]>();
  for (const [id, item] of items) {
    const at = id.indexOf("#");
    if (at === -1) views.set(id, item);
    else {
      const key = id.slice(0, at);
      counted.set(key, [...(counted.get(key) ?? []), ...((item.applied as Set<string> | undefined) ?? [])]);
    }
  }
  return { views, counted: new Map([...counted].map(([key, ids]) => [key, ids.sort()])) };
}

beforeAll(async () => {
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  archive = await generateArchive({
    bucket,
    bus,
    events: 3_000,
    aggregates: 150,
    recordsPerObject: 50,
    duplicateEvery: 97,
    conflictEvery: 89,
  });
}, 60_000);

describe("a replay stopped by kill -9", () => {
  it.each([
    ["balances", 1_500],
    ["daily-totals", 1_500],
  ] as const)(
    "resumes %s from its checkpoint and ends equal to an uninterrupted replay",
    async (projection, limit) => {
      const env = local.cloud().env;
      const whole = `resume-${projection}-whole`;
      const killed = `resume-${projection}-killed`;
      await createTableIfMissing(whole);
      await createTableIfMissing(killed);
      const options = { bucket, bus, projection } as const;

      const uninterrupted = await replayInChild({ ...options, table: whole }, env);
      expect(uninterrupted.events).toBe(archive.events);

      // Slowed by its write limit so that the kill lands mid-way, at its first checkpoint.
      const stopped = await replayInChild(
        { ...options, table: killed, checkpointMs: 100, maxWritesPerSecond: limit },
        env,
        "kill at checkpoint",
      );
      expect(stopped.events).toBeGreaterThan(0);
      expect(stopped.events).toBeLessThan(archive.events);
      const resumed = await replayInChild({ ...options, table: killed }, env);
      expect(resumed.resumedAfter).toBe(stopped.events);
      // Resumed from the checkpoint, not from the start (events since it, plus any the killed run
      // applied past it, which the checkpoint does not know of and are applied again harmlessly).
      expect(resumed.events).toBe(archive.events - stopped.events);

      const [a, b] = [await scanItems(whole), await scanItems(killed)];
      expect(comparable(b)).toEqual(comparable(a));
      expect([...a.keys(), ...b.keys()].some((id) => id.startsWith("replay#"))).toBe(false);
      if (projection === "balances") {
        expect(a.size).toBe(archive.expected.size);
        for (const [id, want] of archive.expected) {
          expect(a.get(id)).toMatchObject({
            owner: want.owner,
            balanceCents: want.balanceCents,
            version: want.version,
          });
        }
      }
    },
    120_000,
  );
});

describe("an event the fold cannot apply", () => {
  const poisonBucket = "replay-poison-archive";
  const table = "replay-poison";
  const gzipAsync = promisify(gzip);

  async function writeArchive(): Promise<void> {
    await s3Client().send(new CreateBucketCommand({ Bucket: poisonBucket }));
    const deposits: Record<string, number[]> = { p1: [5, 13, 7], p2: [3, 4] };
    const records: ArchivedRecord[] = [];
    let sequence = 100n;
    for (const [accountId, amounts] of Object.entries(deposits)) {
      const events = [
        { type: "AccountOpened", data: { accountId, owner: accountId } },
        ...amounts.map((amountCents) => ({ type: "FundsDeposited", data: { accountId, amountCents } })),
      ];
      events.forEach((event, version) => {
        const commit = buildCommit(
          "events",
          {
            commandId: `${accountId}-${version}`,
            attempt: 1,
            service: "accounts",
            bus,
            aggregateType: "Account",
            aggregateId: accountId,
            expectedVersion: version,
            correlationId: "c",
            causationId: "c",
            now: new Date("2026-01-01T00:00:00Z"),
          },
          [event],
        );
        sequence += 1n;
        records.push({
          bus,
          shardId: "shardId-000000000000",
          sequenceNumber: String(sequence),
          partitionKey: accountId,
          arrivedAt: commit.committedAt,
          commit,
        });
      });
    }
    const first = records[0]?.sequenceNumber as string;
    const last = records.at(-1)?.sequenceNumber as string;
    await s3Client().send(
      new PutObjectCommand({
        Bucket: poisonBucket,
        Key: objectKey(bus, "shardId-000000000000", new Date("2026-01-01T00:00:00Z"), first, last),
        Body: await gzipAsync(Buffer.from(`${records.map((r) => JSON.stringify(r)).join("\n")}\n`)),
      }),
    );
  }

  it("is parked with its aggregate, whose later events queue behind it, on every replay", async () => {
    await writeArchive();
    await createTableIfMissing(table);
    process.env.CANON_TABLE = table;
    process.env.POWERTOOLS_LOG_LEVEL = "CRITICAL";
    const { handler } = await import("../fixtures/poison-fold-projection.ts");
    const replay = () =>
      replayIntoProjection({
        bucket: poisonBucket,
        bus,
        table,
        handler,
        name: "accounts.poison-fold",
        eventTypes: ["AccountOpened", "FundsDeposited"],
        upcasters: [],
        resume: false,
      });
    await replay();
    const items = await scanItems(table);
    expect(items.get("p2")).toMatchObject({ version: 3, seen: [1, 2, 3] });
    expect(items.get("p1")).toMatchObject({ version: 2, seen: [1, 2] });
    expect(items.get("parked#Account#p1")).toMatchObject({ kind: "park", first: 0, next: 2 });

    // From the start again: p1 is found parked, its events stay behind the park.
    await replay();
    const again = await scanItems(table);
    expect(again.get("p1")).toMatchObject({ version: 2, seen: [1, 2] });
    expect(again.get("p2")).toMatchObject({ version: 3, seen: [1, 2, 3] });
    expect(again.get("parked#Account#p1")).toMatchObject({ kind: "park", first: 0 });
  }, 60_000);
});
