/**
 * A poison event over the wire: real commands through the whole pipeline into a projection
 * with a bug. Its aggregate is parked (not its neighbours, not other projections); `canon dlq
 * list` shows what and why; `canon dlq redrive` (the real CLI, as an operator runs it against a
 * running system) replays the parked events in order once the bug is fixed.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PutRecordCommand } from "@aws-sdk/client-kinesis";
import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient, kinesisClient } from "../../shared/aws/clients.ts";
import { deadLetterReport, type ParkedAggregate } from "../../shared/runner/dead-letters.ts";
import { readEndpoints } from "../../shared/runner/endpoints.ts";
import type { FragileItem } from "../fixtures/fragile-projection.ts";
import { readSideApp } from "../fixtures/read-side-app.ts";
import { canonBin } from "../support/cli.ts";
import { removeDataDir, repoRoot, startSystem, type TestSystem, view, waitFor } from "../support/system.ts";

let system: TestSystem;
let fragileTable: string;

beforeAll(async () => {
  system = await startSystem({ app: readSideApp });
  fragileTable = system.resources.tableNames.get("accounts-fragile") as string;
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

/** Runs the real `canon` command against the running system's data folder. */
function canon(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [canonBin, ...args, "--data-dir", system.dataDir],
      { cwd: repoRoot, env: { ...process.env, AWS_ENDPOINT_URL_DYNAMODB: "", AWS_ENDPOINT_URL_SQS: "" } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function parked(): Promise<readonly ParkedAggregate[]> {
  return (await deadLetterReport(readEndpoints(system.dataDir))).parked;
}

const deposit = (accountId: string, amountCents: number) =>
  system.command("accounts", "Deposit", { accountId, amountCents });

describe("a poison event in a projection", () => {
  it("parks its aggregate only; the CLI lists it and, once fixed, redrives it in order", async () => {
    // The bug ships: this projection cannot apply 13-cent deposits.
    await dynamoClient().send(new PutCommand({ TableName: fragileTable, Item: { id: "bug" } }));
    for (const id of ["p-1", "p-2"]) {
      expect((await system.command("accounts", "OpenAccount", { accountId: id, owner: id })).status).toBe("accepted");
    }
    // p-1: 100, 13 (poison), 200, 300; p-2 interleaved: 100, 200.
    const p1 = (async () => {
      for (const amount of [100, 13, 200, 300]) expect((await deposit("p-1", amount)).status).toBe("accepted");
    })();
    const p2 = (async () => {
      for (const amount of [100, 200]) expect((await deposit("p-2", amount)).status).toBe("accepted");
    })();
    await Promise.all([p1, p2]);

    // p-1 is parked behind the poison event, with everything after it, in order.
    const [park] = await waitFor(async () => {
      const found = await parked();
      return found.length === 1 && found[0]?.events === 3 ? found : undefined;
    }, "p-1 parked with three events");
    expect(park).toMatchObject({ projection: "accounts.fragile", group: "Account#p-1", attempts: 3 });
    expect(park?.reason).toMatch(/bug: cannot apply a 13-cent deposit/);
    expect(park?.parked.map((e) => [e.type, e.version])).toEqual([
      ["FundsDeposited", 3],
      ["FundsDeposited", 4],
      ["FundsDeposited", 5],
    ]);
    // The neighbour flowed on, and so did p-1 in every other projection.
    expect(await view<FragileItem>(system, "accounts/fragile/p-2")).toMatchObject({ version: 3, seen: [1, 2, 3] });
    expect(await view<FragileItem>(system, "accounts/fragile/p-1")).toMatchObject({ version: 2, seen: [1, 2] });
    const balance = await waitFor(async () => {
      const item = await view<{ version: number; balanceCents: number }>(system, "accounts/balances/p-1");
      return item?.version === 5 ? item : undefined;
    }, "p-1's balance at version 5");
    expect(balance.balanceCents).toBe(613);

    // What an operator sees.
    const listed = await canon("dlq", "list");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain("accounts.fragile  Account#p-1  3 event(s) parked");
    expect(listed.stdout).toMatch(/reason: Error: bug: cannot apply a 13-cent deposit .* \(after 3 attempt\(s\)\)/);
    const json = JSON.parse((await canon("dlq", "list", "--json")).stdout) as { parked: ParkedAggregate[] };
    expect(json.parked.map((p) => [p.projection, p.group, p.events])).toEqual([["accounts.fragile", "Account#p-1", 3]]);

    // A redrive before the fix: still parked, with the reason; nothing moved.
    const early = await canon("dlq", "redrive", "accounts.fragile", "p-1");
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/Account#p-1 is still parked: .* failed: Error: bug: cannot apply a 13-cent deposit/);
    expect(await view<FragileItem>(system, "accounts/fragile/p-1")).toMatchObject({ version: 2 });

    // The fix ships; the redrive replays p-1's parked events in order and clears the park.
    await dynamoClient().send(new DeleteCommand({ TableName: fragileTable, Key: { id: "bug" } }));
    const fixed = await canon("dlq", "redrive", "accounts.fragile", "p-1");
    expect(fixed.stderr).toBe("");
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain("accounts.fragile Account#p-1: 3 event(s) replayed in order; no longer parked");
    expect(await view<FragileItem>(system, "accounts/fragile/p-1")).toMatchObject({
      version: 5,
      seen: [1, 2, 3, 4, 5],
    });
    expect(await parked()).toEqual([]);

    // p-1 flows as usual again.
    await deposit("p-1", 1);
    const after = await waitFor(async () => {
      const item = await view<FragileItem>(system, "accounts/fragile/p-1");
      return item?.version === 6 ? item : undefined;
    }, "p-1 at version 6");
    expect(after.seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await canon("dlq", "list")).stdout).toContain("Nothing parked; every dead-letter queue is empty.");
  });

  it("lists what sits in a dead-letter queue with the reason it carries (a malformed record on the stream)", async () => {
    await kinesisClient().send(
      new PutRecordCommand({
        StreamName: system.resources.streamNames.get("core"),
        PartitionKey: "garbage",
        Data: Buffer.from("this is not a commit"),
      }),
    );
    const queue = await waitFor(async () => {
      const report = await deadLetterReport(readEndpoints(system.dataDir));
      return report.deadLetterQueues.find((q) => q.queue === "canon-core-relay-failures" && q.messages > 0);
    }, "the relay's dead-letter queue to hold the record");
    expect(queue.sample[0]?.reason).toBe("commit is not valid JSON");
    const listed = await canon("dlq", "list");
    expect(listed.stdout).toContain("canon-core-relay-failures: 1 message(s)");
    expect(listed.stdout).toContain("commit is not valid JSON");
    // Peeking left it where it was.
    expect((await canon("dlq", "list")).stdout).toContain("canon-core-relay-failures: 1 message(s)");
  });

  it("refuses bad requests with a reason", async () => {
    const unknown = await canon("dlq", "redrive", "accounts.nope", "p-1");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown projection "accounts.nope" \(known: .*accounts.balances/);
    const nothing = await canon("dlq", "redrive", "accounts.balances", "p-2");
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/nothing is parked for "p-2"/);
    const usage = await canon("dlq", "redrive", "accounts.balances");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("Usage: canon dlq list");
  });
});

describe("the endpoints file", () => {
  it("is removed when the system stops, so `canon dlq` says nothing runs", async () => {
    const file = join(system.dataDir, "endpoints.json");
    expect(existsSync(file)).toBe(true);
    await system.stop();
    expect(existsSync(file)).toBe(false);
    const listed = await canon("dlq", "list");
    expect(listed.code).toBe(1);
    expect(listed.stderr).toMatch(/no running system found/);
  });
});
