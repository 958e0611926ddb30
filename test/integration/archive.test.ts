/**
 * The archive over the wire: the archiver under crashes and retries loses and doubles nothing,
 * `verify` proves it and names a removed object, SQL reads it, and a replay from it rebuilds a
 * projection equal to the fold of the accepted events.
 */
import { CreateStreamCommand, PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { CreateBucketCommand, DeleteObjectCommand } from "@aws-sdk/client-s3";
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { KinesisStreamEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { upcasters } from "../../events/upcasters.ts";
import { type BalanceItem, evolveBalance } from "../../functions/accounts/balances-projection.ts";
import { type AccountEvent, accountEventTypes } from "../../functions/accounts/decider.ts";
import { listArchive, readManifests } from "../../shared/archive/reader.ts";
import { acceptedEventsFromArchive, replayIntoProjection } from "../../shared/archive/replay.ts";
import { queryArchive } from "../../shared/archive/sql.ts";
import { verifyArchive } from "../../shared/archive/verify.ts";
import { dynamoClient, kinesisClient, s3Client, sqsClient } from "../../shared/aws/clients.ts";
import { createTableIfMissing } from "../../shared/aws/tables.ts";
import { isEventOf } from "../../shared/domain/decider.ts";
import { projectionLambda } from "../../shared/entries/projection.ts";
import { acceptedHistory } from "../../shared/events/arbitrate.ts";
import { buildCommit, type Commit } from "../../shared/events/envelope.ts";
import { upcast } from "../../shared/events/upcast.ts";
import { archiverHandler } from "../../shared/handlers/archiver.ts";
import { type LocalCloud, startLocalCloud } from "../../shared/local-cloud/cloud.ts";
import { runKinesisSource } from "../../shared/runner/kinesis-source.ts";
import { removeDataDir, tempDataDir, waitFor } from "../support/system.ts";

const dataDir = tempDataDir("archive");
const bus = "core";
const bucket = "archive-test-bucket";
const streamName = "archive-test-stream";
let cloud: LocalCloud;
const commits: Commit[] = [];

function account(
  id: string,
  expectedVersion: number,
  events: { type: string; data: Record<string, unknown> }[],
  commandId: string,
) {
  return buildCommit(
    "events",
    {
      commandId,
      attempt: 1,
      service: "accounts",
      bus,
      aggregateType: "Account",
      aggregateId: id,
      expectedVersion,
      correlationId: commandId,
      causationId: commandId,
      now: new Date("2026-11-20T10:00:00Z"),
    },
    events,
  );
}

/** A history with everything the archive must keep: accepted commits, a lost race, a rejection. */
function history(): Commit[] {
  const list: Commit[] = [];
  for (const id of ["a1", "a2", "a3"]) {
    // AccountOpened is at schema version 2; a3's was written at version 1 (`ownerName`), so replay must upcast it.
    const v1 = id === "a3";
    const opened = account(
      id,
      0,
      [{ type: "AccountOpened", data: { accountId: id, [v1 ? "ownerName" : "owner"]: `owner-${id}` } }],
      `open-${id}`,
    );
    list.push({ ...opened, events: opened.events.map((e) => ({ ...e, schemaversion: v1 ? 1 : 2 })) });
    for (let v = 1; v <= 5; v++) {
      list.push(
        account(id, v, [{ type: "FundsDeposited", data: { accountId: id, amountCents: v * 100 } }], `dep-${id}-${v}`),
      );
    }
  }
  list.push(account("a1", 3, [{ type: "FundsWithdrawn", data: { accountId: "a1", amountCents: 1 } }], "lost-race"));
  list.push(
    buildCommit(
      "rejection",
      {
        ...account("a2", 6, [], "x"),
        commandId: "rej",
        attempt: 1,
        service: "accounts",
        bus,
        aggregateType: "Account",
        aggregateId: "a2",
        expectedVersion: 6,
        correlationId: "rej",
        causationId: "rej",
        now: new Date(0),
      },
      [{ type: "CommandRejected", data: { command: "Withdraw", reason: "insufficient funds" } }],
    ),
  );
  return list;
}

beforeAll(async () => {
  cloud = await startLocalCloud({ dataDir });
  Object.assign(process.env, cloud.env, {
    CANON_BUS: bus,
    CANON_ARCHIVE_BUCKET: bucket,
    CANON_STREAM_NAME: streamName,
  });
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  await kinesisClient().send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 2 }));
  commits.push(...history());
  const records = [
    ...commits.map((c) => ({ PartitionKey: c.aggregateId, Data: Buffer.from(JSON.stringify(c)) })),
    { PartitionKey: "junk", Data: Buffer.from("not a commit") },
  ];
  await waitFor(async () => {
    try {
      for (const record of records)
        await kinesisClient().send(new PutRecordsCommand({ StreamName: streamName, Records: [record] }));
      return true;
    } catch {
      return undefined;
    }
  }, "records on the stream");

  // The archiver crashes after writing (before its checkpoint) on its first invocations: the
  // mapping retries and bisects, so objects are written again with other boundaries.
  const failures = await sqsClient().send(new CreateQueueCommand({ QueueName: "archive-test-failures" }));
  let crashes = 3;
  let stopping = false;
  const handler = async (event: KinesisStreamEvent) => {
    await archiverHandler(event, {} as never, () => {});
    if (crashes-- > 0) throw new Error("archiver crashed after writing");
    return { batchItemFailures: [] };
  };
  const run = runKinesisSource(
    {
      functionName: "archive-test-archiver",
      streamName,
      streamArn: `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName}`,
      batchSize: 7,
      bisectBatchOnError: true,
      maxRetryAttempts: -1,
      onFailureQueueUrl: failures.QueueUrl as string,
      checkpointTable: await checkpointTable(),
      pollIntervalMs: 50,
      isStopping: () => stopping,
    },
    handler,
  );
  await waitFor(async () => {
    const manifests = await readManifests(bucket, bus);
    return manifests.reduce((sum, m) => sum + m.records, 0) === records.length ? true : undefined;
  }, "every record archived");
  stopping = true;
  await run;
});

afterAll(async () => {
  await cloud?.stop();
  removeDataDir(dataDir);
});

async function checkpointTable(): Promise<string> {
  const name = "archive-test-checkpoints";
  await createTableIfMissing(name);
  return name;
}

describe("the archive", () => {
  it("keeps every record once despite crashes mid-batch, and verify proves it", async () => {
    const report = await verifyArchive({ bucket, bus, streamName });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.stats.records).toBe(commits.length + 1);
    expect(report.stats.commits).toBe(commits.length);
    expect(report.stats.acceptedCommits).toBe(18);
    expect(report.stats.streamRecordsChecked).toBe(commits.length + 1);
    // The retries wrote some records into more than one object: the reader reads each once.
    const objects = (await listArchive(bucket, bus)).flatMap((s) => s.objects);
    expect(objects.length).toBeGreaterThan(2);
  });

  it("answers SQL over the table `events`, with arbitration's verdict in `accepted`", async () => {
    const result = await queryArchive(
      () => bucket,
      [bus],
      "SELECT accepted, count(*) AS n, sum(CAST(data->>'amountCents' AS BIGINT)) AS cents FROM events GROUP BY accepted ORDER BY accepted",
    );
    expect(result.columns).toEqual(["accepted", "n", "cents"]);
    expect(result.rows).toEqual([
      { accepted: false, n: "1", cents: "1" },
      { accepted: true, n: "19", cents: "4500" },
    ]);
  });

  it("replays into a projection that equals the fold of the accepted events", async () => {
    const table = "archive-test-balances";
    await createTableIfMissing(table);
    process.env.CANON_TABLE = table;
    const { balances } = await import("../../functions/accounts/balances-projection.ts");
    const handler = projectionLambda("accounts", balances);
    const types = ["AccountOpened", "FundsDeposited", "FundsWithdrawn"];
    const progress: number[] = [];
    const result = await replayIntoProjection({
      bucket,
      bus,
      table,
      handler,
      name: "accounts.balances",
      eventTypes: types,
      upcasters,
      onProgress: (p) => progress.push(p.events),
    });
    expect(result.events).toBe(18);
    expect(progress.at(-1)).toBe(18);

    const expected = new Map<string, BalanceItem>();
    for (const commit of acceptedHistory(commits)) {
      for (const raw of commit.events) {
        const event = upcast(raw, upcasters);
        if (!types.includes(event.type) || !isEventOf<AccountEvent>(event, accountEventTypes)) continue;
        const id = event.subject;
        expected.set(id, evolveBalance(expected.get(id), event, event.aggregateversion));
      }
    }
    const scanned = await dynamoClient().send(new ScanCommand({ TableName: table }));
    const actual = new Map((scanned.Items ?? []).map((item) => [String(item.id), item]));
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
    expect(actual.get("a1")?.balanceCents).toBe(1500);
    expect(actual.get("a3")?.owner).toBe("owner-a3"); // read from a version 1 event

    // Replaying again changes nothing (idempotent).
    await replayIntoProjection({
      bucket,
      bus,
      table,
      handler,
      name: "accounts.balances",
      eventTypes: types,
      upcasters,
    });
    const again = await dynamoClient().send(new ScanCommand({ TableName: table }));
    expect(again.Items?.length).toBe(3);
    expect((await acceptedEventsFromArchive(bucket, bus, types, upcasters)).length).toBe(18);
  });

  it("fails verify, naming the gap, when an archive object is removed", async () => {
    const objects = (await listArchive(bucket, bus)).flatMap((s) => s.objects);
    const victim = objects.find((o) => o.first !== o.last) ?? objects[0];
    if (victim === undefined) throw new Error("no object");
    // Remove every copy of the victim's records, as a lost object would.
    for (const object of objects.filter(
      (o) =>
        o.shardId === victim.shardId &&
        BigInt(o.first) <= BigInt(victim.last) &&
        BigInt(o.last) >= BigInt(victim.first),
    )) {
      await s3Client().send(new DeleteObjectCommand({ Bucket: bucket, Key: object.key }));
    }
    const report = await verifyArchive({ bucket, bus, streamName });
    expect(report.ok).toBe(false);
    expect(report.problems.join("\n")).toMatch(
      new RegExp(`shard ${victim.shardId}: the manifest counts \\d+ records, the archive holds \\d+`),
    );
    expect(report.problems.join("\n")).toMatch(/is in the stream, below the watermark, but not in the archive/);
  });
});
