/**
 * Laws G, H, I over the wire: a projection added later warms up from the archive during live
 * traffic and ends equal to the fold of every accepted event; a blue/green rebuild under traffic
 * keeps its view answering 200 throughout and ends equal to the fold too.
 */
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { upcasters } from "../../events/upcasters.ts";
import { type ActivityItem, evolveActivity } from "../../functions/accounts/activity-projection.ts";
import { type BalanceItem, evolveBalance } from "../../functions/accounts/balances-projection.ts";
import {
  type AccountEvent,
  accountEventTypes,
  type MovementEvent,
  movementEventTypes,
} from "../../functions/accounts/decider.ts";
import { app } from "../../functions/app.ts";
import { acceptedEventsFromArchive } from "../../shared/archive/replay.ts";
import { archivePassed } from "../../shared/archive/watermark.ts";
import { dynamoClient } from "../../shared/aws/clients.ts";
import { isEventOf } from "../../shared/domain/decider.ts";
import type { EventEnvelope } from "../../shared/events/envelope.ts";
import { viewTable } from "../../shared/local-cloud/control.ts";
import { rebuildProjection, warmUpProjection } from "../../shared/local-cloud/projection-ops.ts";
import { removeDataDir, repoRoot, startSystem, type TestSystem, waitFor } from "../support/system.ts";

let system: TestSystem;
const accounts = ["wu-a", "wu-b", "wu-c", "wu-d"];
const moneyTypes = [
  "AccountOpened",
  "FundsDeposited",
  "FundsWithdrawn",
  "FundsDebitedForTransfer",
  "FundsCreditedForTransfer",
  "FundsRefundedForTransfer",
];

beforeAll(async () => {
  system = await startSystem();
  for (const accountId of accounts) {
    await system.command("accounts", "OpenAccount", { accountId, owner: accountId });
    await system.command("accounts", "Deposit", { accountId, amountCents: 1_000 });
  }
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

/** Bounded background traffic: deposits, withdrawals and transfers; resolves with every command id. */
function traffic(label: string, count: number): { done: Promise<string[]> } {
  const done = (async () => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const a = accounts[i % accounts.length] as string;
      const b = accounts[(i + 1) % accounts.length] as string;
      const [service, command, body] =
        i % 3 === 0
          ? [
              "transfers",
              "RequestTransfer",
              { transferId: `${label}-${i}`, fromAccountId: a, toAccountId: b, amountCents: 50 + i },
            ]
          : i % 3 === 1
            ? ["accounts", "Deposit", { accountId: a, amountCents: 10 + i }]
            : ["accounts", "Withdraw", { accountId: a, amountCents: 5 + i }];
      const response = await system.post(`/commands/${service}/${command}`, body);
      expect(response.status).toBe(202);
      ids.push(((await response.json()) as { commandId: string }).commandId);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    return ids;
  })();
  return { done };
}

/** Waits until every command has an outcome, every transfer finished, and the archive holds it all. */
async function settle(commandIds: readonly string[]): Promise<void> {
  for (const id of commandIds) {
    await waitFor(
      async () => {
        const outcome = (await (await system.get(`/commands/${id}`)).json()) as { status: string };
        return outcome.status === "pending" ? undefined : true;
      },
      `outcome of ${id}`,
      60_000,
    );
  }
  await waitFor(
    async () => {
      const scan = await dynamoClient().send(
        new ScanCommand({ TableName: system.resources.tableNames.get("transfers-transfers") }),
      );
      return (scan.Items ?? []).every((t) => t.status === "COMPLETED" || t.status === "FAILED") ? true : undefined;
    },
    "every transfer finished",
    60_000,
  );
  const moment = new Date();
  await waitFor(
    async () =>
      (
        await archivePassed({
          bucket: system.resources.archiveBuckets.get("core") as string,
          bus: "core",
          streamName: system.resources.streamNames.get("core") as string,
          moment,
        })
      ).passed || undefined,
    "the archive to hold everything",
    60_000,
  );
}

async function archivedEvents(): Promise<EventEnvelope[]> {
  return acceptedEventsFromArchive(
    system.resources.archiveBuckets.get("core") as string,
    "core",
    moneyTypes,
    upcasters,
  );
}

async function scan(table: string): Promise<Map<string, Record<string, unknown>>> {
  const result = await dynamoClient().send(new ScanCommand({ TableName: table }));
  return new Map((result.Items ?? []).map((item) => [String(item.id), item]));
}

const ops = () => ({ app, plan: system.plan, resources: system.resources, repoRoot, upcasters });

describe("a projection added later", () => {
  it("warms up from the archive during live traffic and ends equal to the fold of every event", async () => {
    const load = traffic("warm", 24);
    await new Promise((resolve) => setTimeout(resolve, 400)); // traffic is flowing
    const result = await warmUpProjection({ ...ops(), projection: "accounts.activity" });
    expect(result.events).toBeGreaterThan(0);
    await settle(await load.done);

    const expected = new Map<string, ActivityItem>();
    for (const event of await archivedEvents()) {
      if (!isEventOf<MovementEvent>(event, movementEventTypes)) continue;
      expected.set(event.subject, evolveActivity(expected.get(event.subject), event));
    }
    const table = system.resources.tableNames.get("accounts-activity") as string;
    const actual = await waitFor(async () => {
      const items = await scan(table);
      const same = [...expected].every(([id, item]) => items.get(id)?.version === item.version);
      return same ? items : undefined;
    }, "activity caught up with the archive");
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
  });
});

describe("a blue/green rebuild", () => {
  it("keeps the view answering 200 under traffic and ends equal to the fold of every event", async () => {
    const load = traffic("rebuild", 24);
    const statuses: number[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        statuses.push((await system.get("/views/accounts/balances/wu-a")).status);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const result = await rebuildProjection({ ...ops(), projection: "accounts.balances" });
    await settle(await load.done);
    reading = false;
    await reader;
    expect(statuses.length).toBeGreaterThan(10);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const planned = system.resources.tableNames.get("accounts-balances") as string;
    expect((await viewTable(system.plan.prefix, "accounts/balances", planned))?.table).toBe(result.table);
    // A move recorded for generation 1's table does not apply once another table is planned for the view.
    expect(await viewTable(system.plan.prefix, "accounts/balances", `${planned}-g2`)).toBeUndefined();

    const expected = new Map<string, BalanceItem>();
    for (const event of await archivedEvents()) {
      if (!isEventOf<AccountEvent>(event, accountEventTypes)) continue;
      const id = event.subject;
      expected.set(id, evolveBalance(expected.get(id), event, event.aggregateversion));
    }
    const actual = await waitFor(async () => {
      const items = await scan(result.table);
      const same = [...expected].every(([id, item]) => items.get(id)?.version === item.version);
      return same ? items : undefined;
    }, "the rebuilt table caught up with the archive");
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
    // And the API serves the new table.
    const a = (await (await system.get("/views/accounts/balances/wu-a")).json()) as { balanceCents: number };
    expect(a.balanceCents).toBe(expected.get("wu-a")?.balanceCents);
  });
});
