/**
 * A warm-up waits until the archive has passed a moment (shared/archive/watermark.ts). A shard
 * watermark the stream no longer has — the stream made anew after its data folder was moved
 * aside, or trimmed past retention on AWS — is refused by AFTER_SEQUENCE_NUMBER; the wait must
 * read on from the shard's start instead of failing for ever.
 */
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
} from "@aws-sdk/client-kinesis";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { manifestKey, type ShardManifest } from "../../shared/archive/layout.ts";
import { archivePassed } from "../../shared/archive/watermark.ts";
import { kinesisClient, s3Client } from "../../shared/aws/clients.ts";
import { useLocalCloud, waitFor } from "../support/system.ts";

useLocalCloud("watermark");
const stream = "watermark-test";
const bucket = "watermark-archive";

beforeAll(async () => {
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
});

async function createStream(): Promise<void> {
  await kinesisClient().send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  await waitFor(async () => {
    const { StreamDescriptionSummary } = await kinesisClient().send(
      new DescribeStreamSummaryCommand({ StreamName: stream }),
    );
    return StreamDescriptionSummary?.StreamStatus === "ACTIVE" ? true : undefined;
  }, "the stream active");
}

const put = async (text: string) =>
  (await kinesisClient().send(new PutRecordCommand({ StreamName: stream, PartitionKey: "k", Data: Buffer.from(text) })))
    .SequenceNumber as string;

describe("the archive's watermark after the stream was made anew", () => {
  it("reads on from the shard's start past a watermark the stream does not have", async () => {
    await createStream();
    const old = await put("of the old stream");
    await kinesisClient().send(new DeleteStreamCommand({ StreamName: stream }));
    await waitFor(async () => {
      try {
        await kinesisClient().send(new DescribeStreamSummaryCommand({ StreamName: stream }));
        return undefined;
      } catch {
        return true;
      }
    }, "the old stream gone");
    // Made anew later, as after its data folder was moved aside: its sequence numbers start higher.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await createStream();
    const manifest: ShardManifest = {
      bus: "wm",
      shardId: "shardId-000000000000",
      lastSequenceNumber: old,
      objects: 1,
      records: 1,
      updatedAt: new Date().toISOString(),
    };
    await s3Client().send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: manifestKey("wm", manifest.shardId),
        Body: JSON.stringify(manifest),
      }),
    );
    const target = { bucket, bus: "wm", streamName: stream };

    // Nothing in the new stream yet: nothing to wait for.
    expect(await archivePassed({ ...target, moment: new Date() })).toEqual({ passed: true, waitingOn: [] });
    // A record of the new stream, not archived: the wait names its shard.
    const fresh = await put("of the new stream");
    expect(BigInt(fresh) > BigInt(old)).toBe(true);
    expect(await archivePassed({ ...target, moment: new Date(Date.now() + 1_000) })).toEqual({
      passed: false,
      waitingOn: ["shardId-000000000000"],
    });
  });
});
