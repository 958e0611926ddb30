/**
 * The warm-up handover at archive scale, under live traffic (issue 13): a running system's core
 * archive is given `events` more account events over `aggregates` accounts of their own
 * (archive-generator.ts, on shards the stream does not have), then `accounts.activity`, a
 * projection declared with `warmUp: true`, is warmed up while clients keep depositing into live
 * accounts, before, during and after the replay. Then its table is checked item by item: every
 * generated account as its history folds, every live account with exactly its accepted deposits
 * (a gap would show fewer, a double apply more).
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { upcasters } from "../events/upcasters.ts";
import { app } from "../functions/app.ts";
import { archivePassed } from "../shared/archive/watermark.ts";
import { scanItems } from "../shared/aws/tables.ts";
import type { DevSystem } from "../shared/local-cloud/dev.ts";
import { warmUpProjection } from "../shared/local-cloud/projection-ops.ts";
import { generateArchive } from "./archive-generator.ts";
import { postCommand } from "./load.ts";

export interface HandoverFigures {
  readonly archivedEvents: number;
  readonly replayedEvents: number;
  readonly replaySeconds: number;
  readonly liveAccounts: number;
  /** Deposits accepted while the warm-up ran (and just before and after it). */
  readonly liveDeposits: number;
  readonly duringReplay: number;
  /** Items off what the history folds to: missing, short (a gap) or over (a double apply). */
  readonly mismatches: number;
  readonly equal: boolean;
}

const projection = "accounts.activity";

export async function measureHandoverAtScale(
  system: DevSystem,
  repoRoot: string,
  options: { readonly events: number; readonly aggregates: number; readonly log: (line: string) => void },
): Promise<HandoverFigures> {
  const bucket = system.resources.archiveBuckets.get("core") as string;
  const streamName = system.resources.streamNames.get("core") as string;
  const table = system.resources.tableNames.get("accounts-activity");
  if (table === undefined) throw new Error("bench: handover needs the accounts.activity table");
  options.log(`bench:   adding ${options.events} events over ${options.aggregates} accounts to the core archive …`);
  const archive = await generateArchive({
    bucket,
    bus: "core",
    events: options.events,
    aggregates: options.aggregates,
    shardPrefix: "bench-",
    accountPrefix: "handover-",
  });

  const run = randomUUID().slice(0, 8);
  const live = Array.from({ length: 16 }, (_, i) => `handover-live-${run}-${i}`);
  for (const accountId of live) {
    await postCommand(
      system.url,
      "/commands/accounts/OpenAccount",
      { accountId, owner: accountId },
      `${accountId}-open`,
    );
  }
  const deposits: { id: string; accountId: string; amountCents: number; at: number }[] = [];
  let stop = false;
  const clients = Array.from({ length: 4 }, async (_, c) => {
    for (let i = 0; !stop; i++) {
      const accountId = live[(c + 4 * i) % live.length] as string;
      const amountCents = 1 + ((c * 7 + i) % 50);
      const key = `${run}-${c}-${i}`;
      const id = await postCommand(system.url, "/commands/accounts/Deposit", { accountId, amountCents }, key);
      deposits.push({ id, accountId, amountCents, at: Date.now() });
      await sleep(50);
    }
  });
  await sleep(2_000); // traffic is flowing before the warm-up
  options.log(`bench:   warming ${projection} up under live traffic …`);
  const replayStart = Date.now();
  let lastLine = 0;
  const result = await warmUpProjection({
    app,
    plan: system.plan,
    resources: system.resources,
    repoRoot,
    upcasters,
    projection,
    archiveWaitMs: 180_000,
    onProgress: (p) => {
      if (Date.now() - lastLine < 10_000) return;
      lastLine = Date.now();
      options.log(`bench:     ${p.phase}: ${p.events} events, ${Math.round(p.eventsPerSecond)} ev/s`);
    },
  });
  const replayEnd = Date.now();
  await sleep(3_000); // and after it, the consumer attached
  stop = true;
  await Promise.all(clients);

  options.log(`bench:   ${deposits.length} live deposits; waiting for their outcomes and the view …`);
  for (const deposit of deposits) {
    for (;;) {
      const outcome = (await (await fetch(`${system.url}/commands/${deposit.id}`)).json()) as { status: string };
      if (outcome.status === "accepted") break;
      if (outcome.status !== "pending") throw new Error(`bench: deposit ${deposit.id} was ${outcome.status}`);
      await sleep(100);
    }
  }
  const moment = new Date();
  for (let i = 0; i < 600 && !(await archivePassed({ bucket, bus: "core", streamName, moment })).passed; i++) {
    await sleep(100);
  }
  const want = new Map<string, { deposits: number; withdrawals: number; movedCents: number }>();
  for (const [id, account] of archive.expected) want.set(id, account);
  for (const accountId of live) want.set(accountId, { deposits: 0, withdrawals: 0, movedCents: 0 });
  for (const d of deposits) {
    const w = want.get(d.accountId) as { deposits: number; withdrawals: number; movedCents: number };
    want.set(d.accountId, { ...w, deposits: w.deposits + 1, movedCents: w.movedCents + d.amountCents });
  }
  // The consumer drains the buffer: wait until the live accounts have caught up (or time runs out).
  let mismatches = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < 60 && mismatches > 0; attempt++) {
    mismatches = compare(await scanItems(table), want);
    if (mismatches > 0) await sleep(500);
  }
  return {
    archivedEvents: archive.events,
    replayedEvents: result.events,
    replaySeconds: (replayEnd - replayStart) / 1000,
    liveAccounts: live.length,
    liveDeposits: deposits.length,
    duringReplay: deposits.filter((d) => d.at >= replayStart && d.at <= replayEnd).length,
    mismatches,
    equal: mismatches === 0,
  };
}

function compare(
  items: ReadonlyMap<string, Record<string, unknown>>,
  want: ReadonlyMap<string, { deposits: number; withdrawals: number; movedCents: number }>,
): number {
  let off = 0;
  for (const [id, w] of want) {
    const item = items.get(id);
    const deposits = Number(item?.deposits ?? 0);
    const withdrawals = Number(item?.withdrawals ?? 0);
    const moved = Number(item?.movedCents ?? 0);
    if (deposits !== w.deposits || withdrawals !== w.withdrawals || moved !== w.movedCents) off += 1;
  }
  return off;
}
