/**
 * The local S3 replaces an object atomically, as S3 does: a kill in the middle of rewriting one
 * (the archive's manifest is rewritten by every batch) leaves the old object or the new one, never
 * an empty or mismatched one. Here the two moments a kill can leave behind are laid on disk by
 * hand, then the emulator is killed and started again.
 */
import { copyFileSync, existsSync, readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { destroyClients, s3Client } from "../../shared/aws/clients.ts";
import { useLocalCloud } from "../support/system.ts";

const { dataDir, cloud } = useLocalCloud("s3-replace");
const bucket = "replace-test";

beforeAll(async () => {
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
});

const objectFile = (key: string) => join(dataDir, "sqs-sns-s3", "s3", "buckets", bucket, "objects", key);
const put = (key: string, body: string) =>
  s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
const get = async (key: string) =>
  (await (await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body?.transformToString()) ?? "";

/** Writes v1, keeps its files, writes v2: returns the paths of the object's files and of v1's copies. */
async function twoVersions(key: string) {
  const file = objectFile(key);
  await put(key, `${key} v1 ${"x".repeat(100)}`);
  copyFileSync(`${file}.data`, `${file}.data.v1`);
  copyFileSync(`${file}.meta.json`, `${file}.meta.json.v1`);
  await put(key, `${key} v2, another length`);
  return file;
}

describe("S3 objects replaced across a kill", () => {
  it("leaves no half-written file behind a normal write", async () => {
    await put("plain", "one");
    await put("plain", "two, longer");
    expect(await get("plain")).toBe("two, longer");
    expect(readdirSync(join(objectFile("plain"), "..")).filter((f) => f.includes("canon-new"))).toEqual([]);
  });

  it("finishes a replacement whose data was renamed, and undoes one whose data was not", async () => {
    // Killed after the new data was renamed over the object, before its metadata was.
    const forward = await twoVersions("forward");
    renameSync(`${forward}.meta.json`, `${forward}.meta.json.canon-new`);
    copyFileSync(`${forward}.meta.json.v1`, `${forward}.meta.json`);
    // Killed after both new files were written beside the object, before either was renamed.
    const back = await twoVersions("back");
    renameSync(`${back}.data`, `${back}.data.canon-new`);
    renameSync(`${back}.meta.json`, `${back}.meta.json.canon-new`);
    copyFileSync(`${back}.data.v1`, `${back}.data`);
    copyFileSync(`${back}.meta.json.v1`, `${back}.meta.json`);

    await cloud().restart("sqs-sns-s3", { kill: true });
    destroyClients();
    // The SDK checks each object's checksum against its body: a mismatched pair would fail here.
    expect(await get("forward")).toBe("forward v2, another length");
    expect(await get("back")).toBe(`back v1 ${"x".repeat(100)}`);
    for (const file of [forward, back]) {
      expect(existsSync(`${file}.data.canon-new`)).toBe(false);
      expect(existsSync(`${file}.meta.json.canon-new`)).toBe(false);
    }
  });
});
