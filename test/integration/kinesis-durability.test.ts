/**
 * The local Kinesis emulator keeps what it acknowledged (docs/local-cloud.md): the emulator host
 * is started as `canon dev` starts it (shared/local-cloud/cloud.ts), records are put
 * concurrently (PutRecord and PutRecords), the host is killed with SIGKILL mid-stream (and with a
 * SIGTERM followed at once by SIGKILL), and started again on the same data folder: every
 * acknowledged record is there, in order per shard and per partition key, and the folder opens
 * without complaint. A folder that is damaged anyway, or kinesis-mock's data from earlier
 * versions, stops the start with a message that names the file, says why and how to go on.
 */
import type { ChildProcess } from "node:child_process";
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kinesisClient } from "../../shared/aws/clients.ts";
import { launchEmulator } from "../../shared/local-cloud/cloud.ts";
import { freePort } from "../../shared/local-cloud/ports.ts";
import { removeDataDir, tempDataDir, waitFor } from "../support/system.ts";

const root = tempDataDir("kinesis-durability");
const dataDir = join(root, "kinesis");
const streamName = "durable";
let port: number;
let host: ChildProcess | undefined;

beforeAll(async () => {
  port = await freePort();
  Object.assign(process.env, {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_ENDPOINT_URL_KINESIS: `http://127.0.0.1:${port}`,
  });
});

afterAll(async () => {
  if (host) await kill(host);
  removeDataDir(root);
});

function kill(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

interface Acknowledged {
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly key: string;
  readonly data: string;
}

/** Concurrent writers until `stop` resolves or a call fails (the host is gone): what was acknowledged. */
async function putUntil(stop: Promise<void>, round: number): Promise<Acknowledged[]> {
  const acknowledged: Acknowledged[] = [];
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  const single = async (writer: number) => {
    const key = `r${round}-w${writer}`;
    for (let i = 0; !stopped; i++) {
      const data = `${key}-${i}`;
      try {
        const put = await kinesisClient().send(
          new PutRecordCommand({ StreamName: streamName, PartitionKey: key, Data: Buffer.from(data) }),
        );
        acknowledged.push({ shardId: put.ShardId ?? "", sequenceNumber: put.SequenceNumber ?? "", key, data });
      } catch {
        return;
      }
    }
  };
  const batched = async (writer: number) => {
    for (let i = 0; !stopped; i++) {
      // 3 KB records: the log passes LevelDB's 4 MB memtable, so kills also land amid table writes and compactions.
      const records = Array.from({ length: 20 }, (_, j) => ({
        key: `r${round}-b${writer}-${j % 4}`,
        data: `b${i}-${j}-`.padEnd(3_000, "x"),
      }));
      try {
        const put = await kinesisClient().send(
          new PutRecordsCommand({
            StreamName: streamName,
            Records: records.map((r) => ({ PartitionKey: r.key, Data: Buffer.from(`${r.key}-${r.data}`) })),
          }),
        );
        put.Records?.forEach((result, j) => {
          const record = records[j];
          if (result.SequenceNumber && record) {
            acknowledged.push({
              shardId: result.ShardId ?? "",
              sequenceNumber: result.SequenceNumber,
              key: record.key,
              data: `${record.key}-${record.data}`,
            });
          }
        });
      } catch {
        return;
      }
    }
  };
  await Promise.all([...[0, 1, 2, 3, 4, 5].map(single), ...[0, 1].map(batched)]);
  return acknowledged;
}

/** Every record of every shard, oldest first. */
async function readStream(): Promise<Map<string, { sequenceNumber: string; key: string; data: string }[]>> {
  const shards = (await kinesisClient().send(new ListShardsCommand({ StreamName: streamName }))).Shards ?? [];
  const result = new Map<string, { sequenceNumber: string; key: string; data: string }[]>();
  for (const shard of shards) {
    const records: { sequenceNumber: string; key: string; data: string }[] = [];
    let iterator = (
      await kinesisClient().send(
        new GetShardIteratorCommand({
          StreamName: streamName,
          ShardId: shard.ShardId,
          ShardIteratorType: "TRIM_HORIZON",
        }),
      )
    ).ShardIterator;
    while (iterator) {
      const page = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      for (const r of page.Records ?? []) {
        records.push({
          sequenceNumber: r.SequenceNumber ?? "",
          key: r.PartitionKey ?? "",
          data: Buffer.from(r.Data ?? new Uint8Array()).toString(),
        });
      }
      if ((page.Records ?? []).length === 0 && page.MillisBehindLatest === 0) break;
      iterator = page.NextShardIterator;
    }
    result.set(shard.ShardId ?? "", records);
  }
  return result;
}

function start(folder = dataDir): Promise<ChildProcess> {
  return launchEmulator("kinesis", port, folder);
}

describe("the local Kinesis emulator under kill -9", () => {
  it("keeps every acknowledged record, in order per shard and per key, across kills mid-stream", async () => {
    host = await start();
    await kinesisClient().send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 2 }));
    await waitFor(async () => {
      const summary = await kinesisClient().send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
      return summary.StreamDescriptionSummary?.StreamStatus === "ACTIVE" ? true : undefined;
    }, "the stream ACTIVE");
    const acknowledged: Acknowledged[] = [];
    // Three rounds: SIGKILL, SIGTERM then SIGKILL at once (what once left kinesis-mock's file empty), SIGKILL.
    for (const [round, signals] of [["SIGKILL"], ["SIGTERM", "SIGKILL"], ["SIGKILL"]].entries()) {
      let stop = () => {};
      const stopped = new Promise<void>((resolve) => {
        stop = resolve;
      });
      const writing = putUntil(stopped, round);
      await new Promise((r) => setTimeout(r, 1_200 + round * 300));
      const running = host;
      const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
      for (const signal of signals) running.kill(signal as NodeJS.Signals);
      await exited;
      stop();
      const round_ = await writing;
      expect(round_.length).toBeGreaterThan(50);
      acknowledged.push(...round_);
      // The folder opens without complaint: nothing a kill leaves is half-written in a way that matters.
      host = await start();
    }
    const stream = await readStream();
    for (const [shardId, records] of stream) {
      const numbers = records.map((r) => BigInt(r.sequenceNumber));
      for (let i = 1; i < numbers.length; i++) expect(numbers[i] as bigint).toBeGreaterThan(numbers[i - 1] as bigint);
      expect(new Set(records.map((r) => r.sequenceNumber)).size, shardId).toBe(records.length);
    }
    const found = new Map<string, { shardId: string; index: number; key: string; data: string }>();
    for (const [shardId, records] of stream) {
      for (const [index, r] of records.entries()) {
        found.set(r.sequenceNumber, { shardId, index, key: r.key, data: r.data });
      }
    }
    const missing = acknowledged.filter((a) => found.get(a.sequenceNumber)?.data !== a.data);
    expect(missing, `${missing.length} of ${acknowledged.length} acknowledged records missing or changed`).toEqual([]);
    for (const a of acknowledged) expect(found.get(a.sequenceNumber)?.shardId).toBe(a.shardId);
    // Per partition key, the stream holds the acknowledged records in the order they were written.
    const byKey = new Map<string, Acknowledged[]>();
    for (const a of acknowledged.filter((x) => x.key.includes("-w")))
      byKey.set(a.key, [...(byKey.get(a.key) ?? []), a]);
    for (const [key, records] of byKey) {
      const positions = records.map((r) => found.get(r.sequenceNumber)?.index ?? -1);
      expect(positions, key).toEqual([...positions].sort((a, b) => a - b));
    }
    expect(readdirSync(dataDir)).toContain("CURRENT");
  });
});

describe("a Kinesis data folder the emulator cannot use", () => {
  const copy = (name: string) => {
    const folder = join(root, name, "kinesis");
    cpSync(dataDir, folder, { recursive: true });
    rmSync(join(folder, "LOCK"), { force: true });
    return folder;
  };
  const refusal = async (folder: string, aside = "damaged") => {
    const error = await start(folder).then(
      async (child) => {
        await kill(child);
        return undefined;
      },
      (e: Error) => e,
    );
    expect(error, "the emulator should have refused the folder").toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain("The local Kinesis emulator cannot use its data");
    expect(message).toContain(`mv "${folder}" "${folder}.${aside}-`);
    expect(message).toContain("archive");
    expect(message).not.toMatch(/\n\s+at /); // no stack trace
    return message;
  };

  beforeAll(async () => {
    if (host) await kill(host, "SIGTERM");
    host = undefined;
  });

  it("kinesis-mock's data from earlier versions: names the file and says the emulator changed (also when empty)", async () => {
    for (const content of ["", '{"streams":{}}']) {
      const folder = join(root, `mock-${content.length}`, "kinesis");
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, "kinesis-data.json"), content);
      const message = await refusal(folder, "kinesis-mock");
      expect(message).toContain(join(folder, "kinesis-data.json"));
      expect(message).toContain("kinesis-mock");
      if (content === "") expect(message).toContain("empty");
    }
  });

  it("a write-ahead log with garbage in it: names the log and says it fails its checksum", async () => {
    const folder = copy("garbage-log");
    // Each start turns the log into a table: put records, then kill, so that the log holds them.
    const child = await start(folder);
    await kinesisClient().send(
      new PutRecordsCommand({
        StreamName: streamName,
        Records: Array.from({ length: 50 }, (_, i) => ({ PartitionKey: `g${i}`, Data: Buffer.alloc(100, i) })),
      }),
    );
    await kill(child);
    const log = readdirSync(folder).find((n) => n.endsWith(".log") && statSync(join(folder, n)).size > 2_000);
    expect(log, "a log with records").toBeDefined();
    overwrite(join(folder, log as string), 1_000, "garbage!");
    const message = await refusal(folder);
    expect(message).toContain(join(folder, log as string));
    expect(message).toContain("checksum");
  });

  it("a table cut short, a CURRENT file missing or overwritten: each names its file", async () => {
    const tables = readdirSync(dataDir).filter((n) => n.endsWith(".ldb"));
    expect(tables.length).toBeGreaterThan(0);
    const cut = copy("cut-table");
    const table = tables[0] as string;
    writeFileSync(join(cut, table), Buffer.alloc(10, 1));
    expect(await refusal(cut)).toContain(`${join(cut, table)}: 10 bytes where MANIFEST-`);

    const overwritten = copy("overwritten-table");
    const size = statSync(join(overwritten, table)).size;
    overwrite(join(overwritten, table), size - 8, "garbage!"); // the magic number
    expect(await refusal(overwritten)).toContain(`${join(overwritten, table)}: its last 48 bytes`);

    const noCurrent = copy("no-current");
    rmSync(join(noCurrent, "CURRENT"));
    const missing = await refusal(noCurrent);
    expect(missing).toContain(join(noCurrent, "CURRENT"));
    expect(missing).toContain("missing");

    const badCurrent = copy("bad-current");
    writeFileSync(join(badCurrent, "CURRENT"), "\u0000\u0000garbage");
    expect(await refusal(badCurrent)).toContain(join(badCurrent, "CURRENT"));
  });

  it("a table no MANIFEST lists (what a kill during a compaction leaves) is no damage: LevelDB deletes it", async () => {
    const folder = copy("leftover-table");
    writeFileSync(join(folder, "999999.ldb"), Buffer.alloc(5_000, 7));
    const child = await start(folder);
    const shards = await kinesisClient().send(new ListShardsCommand({ StreamName: streamName }));
    expect(shards.Shards).toHaveLength(2);
    await kill(child, "SIGTERM");
    expect(existsSync(join(folder, "999999.ldb"))).toBe(false);
  });

  it("moved aside as the message says: the emulator starts again, with an empty stream", async () => {
    const folder = copy("moved");
    rmSync(join(folder, "CURRENT"));
    await refusal(folder);
    renameSync(folder, `${folder}.damaged`);
    host = await start(folder);
    const shards = kinesisClient().send(new ListShardsCommand({ StreamName: streamName }));
    await expect(shards).rejects.toMatchObject({ name: "ResourceNotFoundException" });
    expect(existsSync(join(folder, "CURRENT"))).toBe(true);
  });
});

function overwrite(file: string, at: number, text: string): void {
  const fd = openSync(file, "r+");
  writeSync(fd, Buffer.from(text), 0, text.length, at);
  closeSync(fd);
}
