/**
 * The console's stream reader (shared/console/bus-watch.ts) over the wire: when the stream
 * refuses its tip (a local stream made anew after its folder was moved aside; a stream trimmed
 * past retention on AWS), it reads on from the shard's start, past what it has shown, instead
 * of giving the shard up as finished (it used to, and the tail went silent for good).
 */
import { CreateStreamCommand, DeleteStreamCommand, PutRecordCommand } from "@aws-sdk/client-kinesis";
import { describe, expect, it } from "vitest";
import { kinesisClient } from "../../shared/aws/clients.ts";
import { watchBuses } from "../../shared/console/bus-watch.ts";
import { buildCommit } from "../../shared/events/envelope.ts";
import { useLocalCloud, waitFor } from "../support/system.ts";

useLocalCloud("bus-watch");
const stream = "bus-watch-core";

async function makeStream(): Promise<void> {
  await kinesisClient().send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // kinesalite: CREATING, then ACTIVE
}

async function append(accountId: string): Promise<void> {
  const commit = buildCommit(
    "events",
    {
      commandId: `${accountId}-open`,
      attempt: 1,
      service: "accounts",
      bus: "core",
      aggregateType: "Account",
      aggregateId: accountId,
      expectedVersion: 0,
      correlationId: "c",
      causationId: "c",
      now: new Date(),
    },
    [{ type: "AccountOpened", data: { accountId, owner: accountId } }],
  );
  await kinesisClient().send(
    new PutRecordCommand({ StreamName: stream, PartitionKey: accountId, Data: Buffer.from(JSON.stringify(commit)) }),
  );
}

describe("the console's bus reader", () => {
  it("reads on after the stream refuses its tip, without showing a record twice", async () => {
    await makeStream();
    await append("before");
    const watch = watchBuses(new Map([["core", stream]]), { pollMs: 50 });
    try {
      await waitFor(async () => (watch.records("core") === 1 ? true : undefined), "the first record");
      await kinesisClient().send(new DeleteStreamCommand({ StreamName: stream }));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await makeStream();
      await append("after");
      await waitFor(
        async () => (watch.records("core") === 2 ? true : undefined),
        "the record of the new stream",
        30_000,
      );
      expect(watch.recent().map((e) => [e.aggregateId, e.verdict])).toEqual([
        ["before", "accepted"],
        ["after", "accepted"],
      ]);
      expect(watch.shards("core").every((s) => !s.finished)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(watch.records("core")).toBe(2);
    } finally {
      await watch.stop();
    }
  }, 60_000);
});
