/**
 * Over the wire: events larger than a hop allows travel by claim check (300 KiB and 2 MiB), and
 * an event written at an old schema version is read as the current one by every projection.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, describe, expect, it } from "vitest";
import { verifyArchive } from "../../shared/archive/verify.ts";
import { dynamoClient } from "../../shared/aws/clients.ts";
import { buildCommit, type Commit } from "../../shared/events/envelope.ts";
import { appendCommit } from "../../shared/handlers/command-handler.ts";
import { flakyApp } from "../fixtures/flaky-app.ts";
import { removeDataDir, startSystem, type TestSystem, view, waitFor } from "../support/system.ts";

let system: TestSystem | undefined;

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

function commitOf(
  aggregateType: string,
  aggregateId: string,
  type: string,
  data: Record<string, unknown>,
  schemaversion = 1,
): Commit {
  const commit = buildCommit(
    "events",
    {
      commandId: `cmd-${aggregateId}`,
      attempt: 1,
      service: "test",
      bus: "core",
      aggregateType,
      aggregateId,
      expectedVersion: 0,
      correlationId: "c",
      causationId: "c",
      now: new Date(),
    },
    [{ type, data }],
  );
  return { ...commit, events: commit.events.map((e) => ({ ...e, schemaversion })) };
}

function target(s: TestSystem) {
  return {
    streamName: s.resources.streamNames.get("core") as string,
    archiveBucket: s.resources.archiveBuckets.get("core") as string,
  };
}

describe("large events", () => {
  it("travel by claim check through the stream, the topic, the queue and into the archive", async () => {
    system = await startSystem({ app: flakyApp, contracts: {} });
    const sizes = { "big-300k": 300 * 1024, "big-2m": 2 * 1024 * 1024 };
    const commits = Object.entries(sizes).map(([id, bytes]) =>
      commitOf("Thing", id, "ThingHappened", { blob: "x".repeat(bytes) }),
    );
    for (const commit of commits) await appendCommit(target(system), commit);

    const table = system.resources.tableNames.get("things-flaky") as string;
    for (const commit of commits) {
      const event = commit.events[0];
      const item = await waitFor(
        async () => (await dynamoClient().send(new GetCommand({ TableName: table, Key: { id: event?.id } }))).Item,
        `${commit.aggregateId} applied`,
        60_000,
      );
      expect(item.dataBytes).toBe(JSON.stringify(event?.data).length);
    }
    const archive = await waitFor(async () => {
      const report = await verifyArchive({ bucket: target(system as TestSystem).archiveBucket, bus: "core" });
      return report.stats.commits === 2 ? report : undefined;
    }, "both commits archived");
    expect(archive.ok).toBe(true);
    await system.stop();
    removeDataDir(system.dataDir);
    system = undefined;
  });
});

describe("an event at an old schema version", () => {
  it("is read as the current version (AccountOpened v1 `ownerName` → v2 `owner`)", async () => {
    system = await startSystem();
    await appendCommit(
      target(system),
      commitOf("Account", "old-1", "AccountOpened", { accountId: "old-1", ownerName: "Grace" }),
    );
    const balance = await waitFor(
      () => view<{ owner: string }>(system as TestSystem, "accounts/balances/old-1"),
      "old-1's balance",
    );
    expect(balance.owner).toBe("Grace");
    // The command handler's own state read it too: the account exists and takes deposits.
    const deposit = await system.command("accounts", "Deposit", { accountId: "old-1", amountCents: 10 });
    expect(deposit.status).toBe("accepted");
  });
});
