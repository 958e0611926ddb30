/**
 * Claim checks: a commit or event larger than the next hop allows (Kinesis 1 MiB a record,
 * SNS and SQS 256 KiB a message) travels by reference. Its body goes to the bus's archive
 * bucket (versioned, kept for ever) under `claims/`, and the message carries the reference;
 * readers resolve it transparently and check its digest. Nothing is dropped for its size.
 * A rare path: the S3 client is loaded when a claim check is first made or read, not at a
 * function's cold start.
 */
import { createHash } from "node:crypto";
import { s3Client } from "../aws/clients.ts";
import { integer, isObject, noOtherKeys, ShapeError, shape, text } from "./check.ts";

/** The largest commit put on the stream as is (Kinesis: 1 MiB a record, less the partition key). */
export const maxInlineCommitBytes = 1_000_000;
/** The largest event published as is (SNS: 256 KiB a message, less room for attributes). */
export const maxInlineEventBytes = 240 * 1024;
/** The largest body a claim check carries: past that a command is refused with the reason. */
export const maxClaimedBytes = 32 * 1024 * 1024;

/** Where a claimed body is, its size and its digest. */
export interface ClaimCheck {
  readonly bucket: string;
  readonly key: string;
  readonly bytes: number;
  readonly sha256: string;
}

const claimCheckKeys = /* @__PURE__ */ new Set(["bucket", "key", "bytes", "sha256"]);

/** Checks a parsed claim check (strict: no other keys); throws `ShapeError`. */
export function checkClaimCheck(value: unknown): ClaimCheck {
  if (!isObject(value)) throw new ShapeError([], "expected object");
  text(value, "bucket", 3, 63);
  text(value, "key", 1, 1024);
  integer(value, "bytes", 1);
  if (!/^[0-9a-f]{64}$/.test(text(value, "sha256", 0, 64)))
    throw new ShapeError(["sha256"], "expected a SHA-256 hex digest");
  noOtherKeys(value, claimCheckKeys);
  return value as unknown as ClaimCheck;
}

/** The claim check's shape, for a caller that wants an answer rather than an exception. */
export const claimCheckSchema = /* @__PURE__ */ shape(checkClaimCheck);

/** Thrown when a claimed body is missing or not what its reference says. */
export class ClaimCheckError extends Error {
  override name = "ClaimCheckError";
  readonly code = "claim_check" as const;
}

/** Stores a body and returns its reference (the key is derived from an id: a retry rewrites the same object). */
export async function checkIn(bucket: string, key: string, body: string): Promise<ClaimCheck> {
  const bytes = Buffer.byteLength(body);
  if (bytes > maxClaimedBytes) throw new ClaimCheckError(`${key}: ${bytes} bytes is more than ${maxClaimedBytes}`);
  const { PutObjectCommand } = await import("@aws-sdk/client-s3");
  await s3Client().send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/json" }),
  );
  return { bucket, key, bytes, sha256: sha256(body) };
}

/** Fetches a claimed body and checks it against its reference. */
export async function checkOut(claim: ClaimCheck): Promise<string> {
  let body: string;
  try {
    const { GetObjectCommand } = await import("@aws-sdk/client-s3");
    const object = await s3Client().send(new GetObjectCommand({ Bucket: claim.bucket, Key: claim.key }));
    body = (await object.Body?.transformToString("utf8")) ?? "";
  } catch (cause) {
    throw new ClaimCheckError(`claim check s3://${claim.bucket}/${claim.key} could not be read`, { cause });
  }
  if (Buffer.byteLength(body) !== claim.bytes || sha256(body) !== claim.sha256) {
    throw new ClaimCheckError(`claim check s3://${claim.bucket}/${claim.key} does not match its digest`);
  }
  return body;
}

export const commitClaimKey = (commitId: string) => `claims/commits/${commitId}.json`;
export const eventClaimKey = (eventId: string) => `claims/events/${eventId}.json`;

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
