/**
 * Law G by deploy, over the wire: `accounts.balances` declared with `generations: { serving: 1,
 * next: 2 }` gets generation 2 beside generation 1 (own table, queue, detached consumer) while
 * the API keeps reading generation 1; generation 2 is warmed up from the archive under traffic
 * and ends equal to generation 1; the next "deploy" (a restart on the same data with
 * `{ serving: 2 }`) moves reads to generation 2, which keeps applying new events. The view
 * answers 200 throughout.
 */
import { GetSubscriptionAttributesCommand, ListSubscriptionsByTopicCommand } from "@aws-sdk/client-sns";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, describe, expect, it } from "vitest";
import { upcasters } from "../../events/upcasters.ts";
import { app } from "../../functions/app.ts";
import { dynamoClient, snsClient } from "../../shared/aws/clients.ts";
import { rebuildProjection, warmUpProjection } from "../../shared/local-cloud/projection-ops.ts";
import { provision } from "../../shared/local-cloud/provision.ts";
import { planApp } from "../../shared/plan.ts";
import type { AppDefinition } from "../../shared/topology.ts";
import {
  removeDataDir,
  repoRoot,
  startSystem,
  type TestSystem,
  tempDataDir,
  view,
  waitFor,
} from "../support/system.ts";

/** The bank with accounts.balances at the given generations. */
const withBalances = (generations: { serving: number; next?: number }): AppDefinition => ({
  ...app,
  services: app.services.map((service) =>
    service.name !== "accounts"
      ? service
      : {
          ...service,
          projections: service.projections.map((p) => (p.name === "balances" ? { ...p, generations } : p)),
        },
  ),
});

const dataDir = tempDataDir("generations");
let system: TestSystem | undefined;

afterAll(async () => {
  await system?.stop();
  removeDataDir(dataDir);
});

async function items(table: string): Promise<Map<string, Record<string, unknown>>> {
  const result = await dynamoClient().send(new ScanCommand({ TableName: table, ConsistentRead: true }));
  return new Map((result.Items ?? []).filter((i) => !String(i.id).includes("#")).map((i) => [String(i.id), i]));
}

/** The queues subscribed to the core bus's topic (their ARNs). */
async function subscribedQueues(s: TestSystem): Promise<string[]> {
  const listed = await snsClient().send(
    new ListSubscriptionsByTopicCommand({ TopicArn: s.resources.topicArns.get("core") as string }),
  );
  return (listed.Subscriptions ?? []).map((sub) => sub.Endpoint ?? "");
}

const balanceOf = async (s: TestSystem, id: string) =>
  (await view<{ balanceCents: number }>(s, `accounts/balances/${id}`))?.balanceCents;

describe("a projection rebuilt blue/green by deploy", () => {
  it("builds generation 2 beside generation 1, warms it up, then serves it after the next deploy", async () => {
    const building = withBalances({ serving: 1, next: 2 });
    system = await startSystem({ app: building, dataDir });
    const s1 = system;
    for (const id of ["gen-a", "gen-b"]) {
      expect((await s1.command("accounts", "OpenAccount", { accountId: id, owner: id })).status).toBe("accepted");
      expect((await s1.command("accounts", "Deposit", { accountId: id, amountCents: 500 })).status).toBe("accepted");
    }
    const g1 = s1.resources.tableNames.get("accounts-balances") as string;
    const g2 = s1.resources.tableNames.get("accounts-balances-g2") as string;
    expect(g2).toBeDefined();
    expect(s1.runner.functions).not.toContain("accounts-balances-g2"); // detached: its queue buffers
    expect(await balanceOf(s1, "gen-a")).toBe(500);
    expect(await items(g2)).toEqual(new Map());

    // Reads of the view during the warm-up and the switch: never dark.
    const statuses: number[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        // A request cut by the restart between the two deploys is not a status (locally the API restarts; on AWS it does not).
        const status = await system?.get("/views/accounts/balances/gen-a").then(
          (r) => r.status,
          () => undefined,
        );
        if (status !== undefined) statuses.push(status);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    const ops = { app: building, plan: s1.plan, resources: s1.resources, repoRoot, upcasters };
    await expect(rebuildProjection({ ...ops, projection: "accounts.balances-g2" })).rejects.toThrow(
      /a generation being built, not the one the API reads: warm it up instead/,
    );
    await expect(warmUpProjection({ ...ops, projection: "accounts.balances-g3" })).rejects.toThrow(
      /unknown projection "accounts.balances-g3"; known: .*accounts\.balances-g2/,
    );

    // The console shows generation 2 as detached, to warm up, never to rebuild.
    const projections = (await (await s1.get("/_canon/api/projections")).json()) as {
      name: string;
      status: string;
      canWarmUp: boolean;
      canRebuild: boolean;
    }[];
    expect(projections.find((p) => p.name === "accounts.balances-g2")).toMatchObject({
      status: "detached",
      canWarmUp: true,
      canRebuild: false,
    });
    expect(projections.find((p) => p.name === "accounts.balances")).toMatchObject({ status: "live", canRebuild: true });
    const refused = await fetch(`${s1.url}/_canon/api/projections/accounts.balances-g2/rebuild`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(refused.status).toBe(409);

    const during = s1.command("accounts", "Deposit", { accountId: "gen-b", amountCents: 25 });
    const warmed = await warmUpProjection({ ...ops, projection: "accounts.balances-g2" });
    expect(warmed.events).toBeGreaterThan(0);
    expect((await during).status).toBe("accepted");
    expect((await s1.command("accounts", "Deposit", { accountId: "gen-a", amountCents: 100 })).status).toBe("accepted");
    // Generation 2, filled from the archive and then from its buffered queue, equals generation 1.
    const same = await waitFor(async () => {
      const [a, b] = await Promise.all([items(g1), items(g2)]);
      const equal = a.size === b.size && [...a].every(([id, item]) => b.get(id)?.version === item.version);
      return equal && a.size >= 2 ? { a, b } : undefined;
    }, "generation 2 equal to generation 1");
    expect(Object.fromEntries(same.b)).toEqual(Object.fromEntries(same.a));
    expect(await balanceOf(s1, "gen-a")).toBe(600); // still generation 1's table

    // The next deploy: generation 2 serves, generation 1 leaves the plan.
    system = undefined;
    await s1.stop();
    const serving = withBalances({ serving: 2 });
    system = await startSystem({ app: serving, dataDir });
    const s2 = system;
    expect(s2.plan.tables.map((t) => t.id)).not.toContain("accounts-balances");
    expect(s2.runner.functions).toContain("accounts-balances-g2");
    expect(await balanceOf(s2, "gen-a")).toBe(600);
    expect(await balanceOf(s2, "gen-b")).toBe(525);
    expect((await s2.command("accounts", "Deposit", { accountId: "gen-a", amountCents: 50 })).status).toBe("accepted");
    expect(await waitFor(async () => ((await balanceOf(s2, "gen-a")) === 650 ? 650 : undefined), "650 read")).toBe(650);
    // Generation 1's queue is no longer subscribed: it would only buffer, for nothing.
    const endpoints = await subscribedQueues(s2);
    expect(endpoints.some((e) => e.endsWith(":canon-accounts-balances-g2.fifo"))).toBe(true);
    expect(endpoints.some((e) => e.endsWith(":canon-accounts-balances.fifo"))).toBe(false);
    reading = false;
    await reader;
    // Only the restart between the deploys (no server at all) is missing from the reads.
    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
  });

  it("updates a subscription's filter policy when the declaration's event types change, as a deploy would", async () => {
    const s2 = system as TestSystem;
    const narrowed = planApp({
      ...withBalances({ serving: 2 }),
      services: withBalances({ serving: 2 }).services.map((service) =>
        service.name !== "accounts"
          ? service
          : {
              ...service,
              projections: service.projections.map((p) =>
                p.name === "balances" ? { ...p, events: ["AccountOpened", "FundsDeposited"] } : p,
              ),
            },
      ),
    });
    const policyOf = async () => {
      const listed = await snsClient().send(
        new ListSubscriptionsByTopicCommand({ TopicArn: s2.resources.topicArns.get("core") as string }),
      );
      const sub = listed.Subscriptions?.find((x) => x.Endpoint?.endsWith(":canon-accounts-balances-g2.fifo"));
      const attributes = await snsClient().send(
        new GetSubscriptionAttributesCommand({ SubscriptionArn: sub?.SubscriptionArn as string }),
      );
      return JSON.parse(attributes.Attributes?.FilterPolicy ?? "{}") as { type: string[] };
    };
    expect((await policyOf()).type).toContain("FundsWithdrawn");
    await provision(narrowed);
    expect((await policyOf()).type.sort()).toEqual(["AccountOpened", "FundsDeposited"]);
    await provision(s2.plan); // back as declared
    expect((await policyOf()).type).toContain("FundsWithdrawn");
  });
});
