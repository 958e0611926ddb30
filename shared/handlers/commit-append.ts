/**
 * Appending commits to a bus stream: one PutRecords call for a whole batch of commands
 * (within Kinesis's 500 records and 5 MiB a call), a commit too large for a record by claim
 * check. Kinesis may refuse some entries of a call (throughput exceeded): those are sent again,
 * and so is every later entry of the same aggregate, so each aggregate's commits land on the
 * stream in the order they were decided (a pipelined commit right after its predecessor).
 */
import { PutRecordsCommand, type PutRecordsRequestEntry } from "@aws-sdk/client-kinesis";
import { kinesisClient } from "../aws/clients.ts";
import { isCanonError } from "../errors.ts";
import { checkIn, commitClaimKey, maxInlineCommitBytes } from "../events/claim-check.ts";
import { type Commit, commitClaimRecord } from "../events/envelope.ts";
import { type RetryPolicy, retry } from "../retry.ts";

export interface AppendTarget {
  readonly streamName: string;
  /** Where commits too large for a stream record go (claim checks). */
  readonly archiveBucket: string;
}

const maxRecordsPerCall = 500;
const maxBytesPerCall = 5 * 1024 * 1024;
/**
 * Calls before refused entries make the append fail (the command is then retried as a whole),
 * waiting from 0–100 ms, doubling. A failed call is the SDK's to retry, and passes through.
 */
const refusedRetry: RetryPolicy = {
  attempts: 8,
  baseMs: 100,
  retryable: (error) => isCanonError(error, "append_refused"),
};

/** Thrown when Kinesis keeps refusing entries: nothing is lost, the commands are retried. */
export class AppendRefusedError extends Error {
  override name = "AppendRefusedError";
  readonly code = "append_refused" as const;
}

/** Appends one commit (see `appendCommits`). */
export async function appendCommit(target: AppendTarget, commit: Commit): Promise<void> {
  await appendCommits(target, [commit]);
}

/** Appends commits in the order given (per aggregate, the order matters; across aggregates it does not). */
export async function appendCommits(target: AppendTarget, commits: readonly Commit[]): Promise<void> {
  if (commits.length === 0) return;
  let pending: PutRecordsRequestEntry[] = await Promise.all(commits.map((commit) => recordOf(target, commit)));
  await retry(async () => {
    const again: PutRecordsRequestEntry[] = [];
    for (const chunk of chunks(pending)) {
      const result = await kinesisClient().send(
        new PutRecordsCommand({ StreamName: target.streamName, Records: chunk }),
      );
      if ((result.FailedRecordCount ?? 0) === 0) continue;
      const refused = new Set<string>();
      chunk.forEach((entry, index) => {
        const key = entry.PartitionKey ?? "";
        if (result.Records?.[index]?.ErrorCode !== undefined) refused.add(key);
        if (refused.has(key)) again.push(entry);
      });
    }
    pending = again;
    if (again.length > 0) {
      throw new AppendRefusedError(`Kinesis refused ${again.length} records ${refusedRetry.attempts} times in a row`);
    }
  }, refusedRetry);
}

async function recordOf(target: AppendTarget, commit: Commit): Promise<PutRecordsRequestEntry> {
  let body = JSON.stringify(commit);
  if (Buffer.byteLength(body) > maxInlineCommitBytes) {
    body = commitClaimRecord(commit, await checkIn(target.archiveBucket, commitClaimKey(commit.commitId), body));
  }
  return { PartitionKey: commit.aggregateId, Data: Buffer.from(body) };
}

/** Splits entries into calls Kinesis accepts, keeping their order. */
function chunks(entries: readonly PutRecordsRequestEntry[]): PutRecordsRequestEntry[][] {
  const out: PutRecordsRequestEntry[][] = [];
  let current: PutRecordsRequestEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = (entry.Data?.byteLength ?? 0) + Buffer.byteLength(entry.PartitionKey ?? "");
    if (current.length === maxRecordsPerCall || (current.length > 0 && bytes + size > maxBytesPerCall)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
