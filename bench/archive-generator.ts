/**
 * Writes a bank's archive directly in the archive's layout (shared/archive/layout.ts), not
 * through the pipeline: `events` account events over `aggregates` accounts, one commit a record,
 * spread over shards by account, `recordsPerObject` records an object, as the archiver writes
 * them. Like a real stream it holds what arbitration must drop: a retried commit archived twice
 * (a duplicate) now and then, and a commit that lost a race (decided on a stale version).
 *
 * It returns the balances the accepted history folds to, so a replay can be checked item by item.
 */
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { accountContract } from "../functions/accounts/contract.ts";
import type { AccountEvent } from "../functions/accounts/decider.ts";
import { type ArchivedRecord, manifestKey, objectKey, type ShardManifest } from "../shared/archive/layout.ts";
import { s3Client } from "../shared/aws/clients.ts";
import { buildCommit, type Commit } from "../shared/events/envelope.ts";

const gzipAsync = promisify(gzip);

const schemaVersions: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(accountContract.events).map(([type, { version }]) => [type, version]),
);

export interface GeneratedArchive {
  /** Accepted events of the balances projection's types (what a replay applies). */
  readonly events: number;
  readonly records: number;
  readonly objects: number;
  readonly bytes: number;
  readonly seconds: number;
  /** Per account: the balance item the accepted history folds to. */
  readonly expected: ReadonlyMap<string, ExpectedAccount>;
}

/** What an account's accepted history folds to: its balance item, and its activity's counts. */
export interface ExpectedAccount {
  readonly owner: string;
  readonly balanceCents: number;
  readonly version: number;
  readonly deposits: number;
  readonly withdrawals: number;
  readonly movedCents: number;
}

export interface GenerateOptions {
  readonly bucket: string;
  readonly bus: string;
  readonly events: number;
  readonly aggregates: number;
  readonly shards?: number;
  readonly recordsPerObject?: number;
  /** Every n-th commit is archived twice. @default 997 */
  readonly duplicateEvery?: number;
  /** Every n-th commit is followed by one that lost its race. @default 1499 */
  readonly conflictEvery?: number;
  readonly seed?: number;
  /**
   * Names the shards `shardId-<prefix>…`: an archive of shards the stream does not have, beside
   * a live system's own (its aggregates are its own too). @default "" (the stream's shard names)
   */
  readonly shardPrefix?: string;
  /** Account ids' prefix. @default "gen-" */
  readonly accountPrefix?: string;
}

/** A small deterministic generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function generateArchive(options: GenerateOptions): Promise<GeneratedArchive> {
  const started = Date.now();
  const shards = options.shards ?? 2;
  const perObject = options.recordsPerObject ?? 500;
  const duplicateEvery = options.duplicateEvery ?? 997;
  const conflictEvery = options.conflictEvery ?? 1499;
  const next = random(options.seed ?? 1);
  const accounts = Array.from(
    { length: options.aggregates },
    (_, i) => `${options.accountPrefix ?? "gen-"}${String(i).padStart(6, "0")}`,
  );
  const expected = new Map<string, ExpectedAccount>();
  const buffers: ArchivedRecord[][] = Array.from({ length: shards }, () => []);
  const sequence = Array.from({ length: shards }, (_, s) => BigInt(`49${String(s).padStart(3, "0")}${"0".repeat(51)}`));
  const manifests = Array.from({ length: shards }, () => ({ objects: 0, records: 0, last: "0" }));
  const shardId = (s: number) => `shardId-${options.shardPrefix ?? ""}${String(s).padStart(12, "0")}`;
  const clock = Date.parse("2026-01-01T00:00:00Z");
  let records = 0;
  let objects = 0;
  let bytes = 0;
  let commits = 0;
  const writes = new Set<Promise<void>>();

  const flush = async (s: number) => {
    const batch = buffers[s] as ArchivedRecord[];
    if (batch.length === 0) return;
    buffers[s] = [];
    const first = (batch[0] as ArchivedRecord).sequenceNumber;
    const last = (batch.at(-1) as ArchivedRecord).sequenceNumber;
    const write = (async () => {
      const body = await gzipAsync(Buffer.from(`${batch.map((r) => JSON.stringify(r)).join("\n")}\n`));
      bytes += body.length;
      await s3Client().send(
        new PutObjectCommand({
          Bucket: options.bucket,
          Key: objectKey(options.bus, shardId(s), new Date(batch[0]?.arrivedAt ?? clock), first, last),
          Body: body,
        }),
      );
    })();
    writes.add(write);
    void write.finally(() => writes.delete(write));
    const shard = manifests[s] as (typeof manifests)[number];
    shard.objects += 1;
    shard.records += batch.length;
    shard.last = last;
    objects += 1;
    if (writes.size >= 4) await Promise.race(writes);
  };

  const archive = async (commit: Commit) => {
    const s = hash(commit.aggregateId) % shards;
    sequence[s] = (sequence[s] as bigint) + 1n + BigInt(Math.floor(next() * 1000));
    (buffers[s] as ArchivedRecord[]).push({
      bus: options.bus,
      shardId: shardId(s),
      sequenceNumber: String(sequence[s]),
      partitionKey: commit.aggregateId,
      arrivedAt: commit.committedAt,
      commit,
    });
    records += 1;
    if ((buffers[s] as ArchivedRecord[]).length >= perObject) await flush(s);
  };

  let events = 0;
  while (events < options.events) {
    const accountId = accounts[Math.floor(next() * accounts.length)] as string;
    const state = expected.get(accountId);
    const version = state?.version ?? 0;
    const amountCents = 1 + Math.floor(next() * 10_000);
    const event: AccountEvent =
      state === undefined
        ? { type: "AccountOpened", data: { accountId, owner: `owner-${accountId}` } }
        : next() < 0.3 && state.balanceCents >= amountCents
          ? { type: "FundsWithdrawn", data: { accountId, amountCents } }
          : { type: "FundsDeposited", data: { accountId, amountCents } };
    commits += 1;
    const meta = {
      commandId: `gen-command-${commits}`,
      attempt: 1,
      service: "accounts",
      bus: options.bus,
      aggregateType: "Account",
      aggregateId: accountId,
      expectedVersion: version,
      correlationId: `gen-command-${commits}`,
      causationId: `gen-command-${commits}`,
      now: new Date(clock + commits * 10),
    };
    const built = buildCommit("events", meta, [event as unknown as { type: string; data: Record<string, unknown> }]);
    // As the command handler stamps them: AccountOpened is at version 2 of its schema.
    const commit = {
      ...built,
      events: built.events.map((e) => ({ ...e, schemaversion: schemaVersions[e.type] ?? 1 })),
    };
    await archive(commit);
    if (commits % duplicateEvery === 0) await archive(commit); // a retried append, archived twice
    if (commits % conflictEvery === 0 && version > 0) {
      // A commit decided on the version before: it loses, and must change nothing.
      const stale = buildCommit("events", { ...meta, commandId: `gen-stale-${commits}`, expectedVersion: version }, [
        { type: "FundsDeposited", data: { accountId, amountCents: 1_000_000 } },
      ]);
      await archive(stale);
    }
    const base = state ?? { owner: "", balanceCents: 0, version: 0, deposits: 0, withdrawals: 0, movedCents: 0 };
    const moved = event.type === "FundsDeposited" || event.type === "FundsWithdrawn" ? event.data.amountCents : 0;
    expected.set(accountId, {
      owner: event.type === "AccountOpened" ? event.data.owner : base.owner,
      balanceCents: base.balanceCents + (event.type === "FundsWithdrawn" ? -moved : moved),
      version: version + 1,
      deposits: base.deposits + (event.type === "FundsDeposited" ? 1 : 0),
      withdrawals: base.withdrawals + (event.type === "FundsWithdrawn" ? 1 : 0),
      movedCents: base.movedCents + moved,
    });
    events += 1;
  }
  for (let s = 0; s < shards; s++) await flush(s);
  await Promise.all(writes);
  for (let s = 0; s < shards; s++) {
    const shard = manifests[s] as (typeof manifests)[number];
    const manifest: ShardManifest = {
      bus: options.bus,
      shardId: shardId(s),
      lastSequenceNumber: shard.last,
      objects: shard.objects,
      records: shard.records,
      updatedAt: new Date().toISOString(),
    };
    await s3Client().send(
      new PutObjectCommand({
        Bucket: options.bucket,
        Key: manifestKey(options.bus, shardId(s)),
        Body: JSON.stringify(manifest),
      }),
    );
  }
  return { events, records, objects, bytes, seconds: (Date.now() - started) / 1000, expected };
}

function hash(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
  return Math.abs(h);
}
