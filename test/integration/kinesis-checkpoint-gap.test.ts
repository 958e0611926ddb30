/**
 * A Kinesis consumer never wedges on its checkpoint (docs/architecture.md, invariant 8): when
 * the checkpoint in the runner's table names a record the stream does not have — between two
 * records (lost or trimmed), beyond the shard's tip (a crash lost the records it names), or a
 * sequence number the stream refuses — the local event source mapping reads on from the next
 * record that exists, says so once, and goes on. Over the wire, against the embedded emulator.
 */
import { CreateStreamCommand, PutRecordCommand } from "@aws-sdk/client-kinesis";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { KinesisStreamEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { dynamoClient, kinesisClient } from "../../shared/aws/clients.ts";
import { createTableIfMissing } from "../../shared/aws/tables.ts";
import { type LocalCloud, startLocalCloud } from "../../shared/local-cloud/cloud.ts";
import { runKinesisSource } from "../../shared/runner/kinesis-source.ts";
import { removeDataDir, tempDataDir, waitFor } from "../support/system.ts";

const dataDir = tempDataDir("kinesis-gap");
const checkpointTable = "gap-test-checkpoints";
const streamName = "gap-test-stream";
let cloud: LocalCloud;
const sequenceNumbers: string[] = [];

beforeAll(async () => {
  cloud = await startLocalCloud({ dataDir });
  Object.assign(process.env, cloud.env);
  await createTableIfMissing(checkpointTable);
  await kinesisClient().send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 1 }));
  for (let i = 0; i < 10; i++) sequenceNumbers.push(await put(`r${i}`));
});

afterAll(async () => {
  await cloud?.stop();
  removeDataDir(dataDir);
});

async function put(data: string): Promise<string> {
  return waitFor(async () => {
    try {
      const result = await kinesisClient().send(
        new PutRecordCommand({ StreamName: streamName, PartitionKey: "p", Data: Buffer.from(data) }),
      );
      return result.SequenceNumber;
    } catch {
      return undefined; // the stream is still being created
    }
  }, `record ${data} put`);
}

const shardId = "shardId-000000000000";

/** Runs a consumer whose checkpoint is `checkpoint` until `until` holds; returns what it was given and logged. */
async function consume(
  name: string,
  checkpoint: string,
  until: (delivered: readonly string[]) => boolean,
  whileRunning: () => Promise<void> = async () => {},
): Promise<{ delivered: string[]; gapLines: string[]; resumedLines: string[]; checkpoint: unknown }> {
  await dynamoClient().send(
    new PutCommand({ TableName: checkpointTable, Item: { id: `${name}#${shardId}`, sequenceNumber: checkpoint } }),
  );
  const lines: string[] = [];
  const spy = vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
  });
  const delivered: string[] = [];
  let stopping = false;
  const run = runKinesisSource(
    {
      functionName: name,
      streamName,
      streamArn: `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName}`,
      batchSize: 3,
      bisectBatchOnError: false,
      maxRetryAttempts: -1,
      onFailureQueueUrl: "unused",
      checkpointTable,
      pollIntervalMs: 50,
      isStopping: () => stopping,
    },
    async (event: KinesisStreamEvent) => {
      delivered.push(...event.Records.map((r) => Buffer.from(r.kinesis.data, "base64").toString()));
      return { batchItemFailures: [] };
    },
  );
  try {
    await whileRunning();
    await waitFor(async () => (until(delivered) ? true : undefined), `${name} delivered enough`, 20_000);
    // Longer than the source's 2 s listing interval: a wedged shard would have logged again by now.
    await new Promise((r) => setTimeout(r, 2_500));
  } finally {
    stopping = true;
    await run;
    spy.mockRestore();
  }
  const item = await dynamoClient().send(
    new GetCommand({ TableName: checkpointTable, Key: { id: `${name}#${shardId}` }, ConsistentRead: true }),
  );
  return {
    delivered,
    gapLines: lines.filter((l) => l.includes("names a record the stream no longer has")),
    resumedLines: lines.filter((l) => l.includes(" resumed ")),
    checkpoint: item.Item?.sequenceNumber,
  };
}

// kinesalite's sequence numbers (as AWS's, version 2): 47 hex digits; the record index is at
// digits 11–26, the arrival second at digits 29–37. Moving one field keeps the number valid.
const indexUnit = 16n ** 20n;
const secondUnit = 16n ** 9n;

describe("a Kinesis consumer whose checkpoint names a record the stream does not have", () => {
  it("between two records (lost or trimmed): resumes at the next record that exists", async () => {
    const between = (BigInt(sequenceNumbers[4] as string) + secondUnit).toString();
    const result = await consume("between", between, (d) => d.includes("r9"));
    expect(result.delivered).toEqual(["r5", "r6", "r7", "r8", "r9"]);
    expect(result.gapLines).toHaveLength(1);
    expect(result.gapLines[0]).toContain(between);
    expect(result.resumedLines).toEqual([expect.stringContaining(`at ${sequenceNumbers[5]}`)]);
    expect(result.checkpoint).toBe(sequenceNumbers[9]);
  });

  it("beyond the shard's tip (a crash lost what it names): skips what exists, then delivers every new record", async () => {
    const beyond = (BigInt(sequenceNumbers[9] as string) + 1_000n * indexUnit).toString();
    const result = await consume(
      "beyond",
      beyond,
      (d) => d.includes("r11"),
      async () => {
        await new Promise((r) => setTimeout(r, 1_000));
        sequenceNumbers.push(await put("r10"), await put("r11"));
      },
    );
    expect(result.delivered).toEqual(["r10", "r11"]);
    expect(result.gapLines).toHaveLength(1);
    expect(result.resumedLines).toEqual([expect.stringContaining("at the tip")]);
    expect(result.checkpoint).toBe(sequenceNumbers[11]);
  });

  it("refused by the stream (not one of its sequence numbers): reads the shard from its oldest record", async () => {
    const result = await consume("refused", "12345", (d) => d.includes("r11"));
    expect(result.delivered).toEqual(Array.from({ length: 12 }, (_, i) => `r${i}`));
    expect(result.gapLines).toHaveLength(1);
    expect(result.gapLines[0]).toContain("refused");
  });

  it("a checkpoint the stream has: no gap, nothing said, reading on after it", async () => {
    const result = await consume("valid", sequenceNumbers[7] as string, (d) => d.includes("r11"));
    expect(result.delivered).toEqual(["r8", "r9", "r10", "r11"]);
    expect(result.gapLines).toEqual([]);
  });
});
