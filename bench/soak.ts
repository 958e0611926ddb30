/**
 * `npm run soak -- --seconds N [--seed S] [--accounts K] [--clients C] [--sdk-faults P]`: the bank under load and
 * faults, then the oracle (bench/oracle.ts). `--crash N` instead kills the whole `canon dev`
 * process group N times under load (bench/crash-soak.ts).
 *
 * Starts the whole system in-process on a fresh data folder, with runner faults from the seed
 * (duplicates, crashes after partial work, replays, delayed redelivery: CANON_FAULTS) on every
 * queue and stream consumer, and throttles, timeouts and connection resets at the AWS SDK in every
 * function and the API (P per call attempt, default 0.02); C clients run deposits, withdrawals and transfers over K accounts
 * through the HTTP API for N seconds, while the schedule (bench/schedule.ts) restarts each
 * emulator process under load (Kinesis by SIGKILL) and puts poison on the stream. Then it quiesces and runs the oracle. The last
 * line printed is `oracle: ok ops=… faults=… seed=…` or `oracle: FAILED …` (exit code 1).
 * The same seed gives the same fault schedule (which message meets which fault also depends on
 * how batches happen to form, so two runs are alike, not identical).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { PutRecordCommand } from "@aws-sdk/client-kinesis";
import { app } from "../functions/app.ts";
import { contractsOf } from "../shared/domain/commands.ts";
import { buildCommit } from "../shared/events/envelope.ts";
import { type DevSystem, startDev } from "../shared/local-cloud/dev.ts";
import { seededRandom } from "../shared/runner/faults.ts";
import { benchAws } from "./aws.ts";
import { checkOracle } from "./oracle.ts";
import { poisonRecordBytes, type ScheduledFault, soakSchedule } from "./schedule.ts";
import { archiveCaughtUp, Client, transfersFinished } from "./soak-client.ts";

export interface SoakOptions {
  readonly seconds: number;
  readonly seed: number;
  readonly accounts: number;
  readonly clients: number;
  /** Throttles, timeouts and resets per AWS call attempt, in every function and the API. @default 0 */
  readonly sdkFaults?: number;
  /** Progress lines. @default console.log */
  readonly log?: (line: string) => void;
}

export interface SoakResult {
  readonly ok: boolean;
  readonly ops: number;
  readonly faults: number;
  readonly faultCounts: Readonly<Record<string, number>>;
  readonly problems: readonly string[];
  /** The last line: `oracle: ok ops=… faults=… seed=…` or `oracle: FAILED …`. */
  readonly line: string;
}

const repoRoot = resolve(import.meta.dirname, "..");

/**
 * The soak's own writes to the stream (poison): through a client of the bench's, without the SDK
 * faults the system under test meets, since a "reset after the request was carried out" would
 * put a record twice and the oracle must know every poison record's sequence number.
 */
let injectingClient: ReturnType<typeof benchAws>["kinesis"] | undefined;
const injecting = () => (injectingClient ??= benchAws().kinesis);
const openingCents = 10_000;

/** Runs one soak; never throws for an oracle failure (see `ok` and `problems`). */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const { seed, seconds } = options;
  const schedule = soakSchedule(seed, seconds, options.sdkFaults ?? 0);
  const dataDir = mkdtempSync(join(tmpdir(), "canon-soak-"));
  const savedFaults = process.env.CANON_FAULTS;
  // The runner reads its faults from the environment. Projections park an event still failing on
  // its 3rd receive (the plan's default); the injected faults stop at 2 receives per message.
  process.env.CANON_FAULTS = schedule.faults;
  log(`soak: seed=${seed} seconds=${seconds} accounts=${options.accounts} clients=${options.clients}`);
  log(`soak: CANON_FAULTS=${schedule.faults}`);
  log(`soak: schedule ${schedule.events.map(describe).join(", ")}`);
  let system: DevSystem | undefined;
  let keep = false;
  try {
    system = await startDev({ app, contracts: contractsOf(app), repoRoot, dataDir, port: 0 });
    const result = await soak(system, options, schedule.events, dataDir, log);
    keep = !result.ok && process.env.CANON_SOAK_KEEP_DATA === "1";
    return result;
  } finally {
    await system?.stop();
    restoreEnv("CANON_FAULTS", savedFaults);
    // CANON_SOAK_KEEP_DATA=1 keeps a failed run's data folder for a post-mortem.
    if (keep) log(`soak: data kept in ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

function describe(event: ScheduledFault): string {
  const at = `${(event.atMs / 1000).toFixed(1)}s`;
  switch (event.kind) {
    case "restart":
      return `${event.kill ? "kill" : "restart"} ${event.emulator} @${at}`;
    case "poison-record":
      return `poison-record#${event.variant} @${at}`;
    case "poison-event":
      return `poison-event @${at}`;
  }
}

async function soak(
  system: DevSystem,
  options: SoakOptions,
  schedule: readonly ScheduledFault[],
  dataDir: string,
  log: (line: string) => void,
): Promise<SoakResult> {
  const { seed } = options;
  // Patient: a command in flight when its queue's emulator restarts comes back after its 30 s
  // visibility timeout, and a busy machine slows everything further.
  const client = new Client(system.url, 180_000);
  const accounts = Array.from({ length: options.accounts }, (_, i) => `s${seed}-a${i}`);
  await Promise.all(
    accounts.map(async (accountId) => {
      await client.command("accounts", "OpenAccount", { accountId, owner: accountId }, `${accountId}-open`);
      await client.command("accounts", "Deposit", { accountId, amountCents: openingCents }, `${accountId}-seed`);
    }),
  );
  log(`soak: ${accounts.length} accounts open with ${openingCents} cents each`);

  let expectedTotalCents = accounts.length * openingCents;
  const transfers: string[] = [];
  const problems: string[] = [];
  let ops = 0;
  const started = Date.now();
  const deadline = started + options.seconds * 1000;

  const runClient = async (index: number) => {
    const random = seededRandom((seed ^ (index * 0x9e3779b1)) >>> 0);
    const pick = (n: number) => Math.floor(random() * n);
    for (let n = 0; Date.now() < deadline; n++) {
      const a = accounts[pick(accounts.length)] as string;
      const b = accounts[(accounts.indexOf(a) + 1 + pick(accounts.length - 1)) % accounts.length] as string;
      const roll = pick(10);
      const amountCents = 1 + pick(roll < 4 ? 500 : 800);
      const key = `s${seed}-c${index}-${n}`;
      try {
        if (roll < 4) {
          const outcome = await client.command("accounts", "Deposit", { accountId: a, amountCents }, key);
          if (outcome.status === "accepted") expectedTotalCents += amountCents;
        } else if (roll < 7) {
          const outcome = await client.command("accounts", "Withdraw", { accountId: a, amountCents }, key);
          if (outcome.status === "accepted") expectedTotalCents -= amountCents;
        } else {
          const body = { transferId: key, fromAccountId: a, toAccountId: b, amountCents };
          const outcome = await client.command("transfers", "RequestTransfer", body, key);
          if (outcome.status === "accepted") transfers.push(key);
        }
        ops += 1;
      } catch (error) {
        problems.push(`client ${index}: ${(error as Error).message}`);
        return;
      }
    }
  };

  const poisonAggregates: string[] = [];
  const poisonSequenceNumbers: string[] = [];
  let restarts = 0;
  const streamName = system.resources.streamNames.get("core") as string;
  const inject = async (event: ScheduledFault) => {
    switch (event.kind) {
      case "restart": {
        const t = Date.now();
        await system.cloud?.restart(event.emulator, { kill: event.kill === true });
        restarts += 1;
        log(
          `soak: ${event.kill ? "killed (SIGKILL) and restarted" : "restarted"} ${event.emulator} under load in ${Date.now() - t} ms`,
        );
        return;
      }
      case "poison-record": {
        const put = await injecting().send(
          new PutRecordCommand({
            StreamName: streamName,
            PartitionKey: `poison-${seed}-${event.variant}`,
            Data: poisonRecordBytes(event.variant, seed),
          }),
        );
        poisonSequenceNumbers.push(put.SequenceNumber ?? "");
        return;
      }
      case "poison-event": {
        const aggregateId = `s${seed}-poison-${poisonAggregates.length}`;
        poisonAggregates.push(aggregateId);
        const commit = buildCommit(
          "events",
          {
            commandId: `${aggregateId}-cmd`,
            attempt: 1,
            service: "accounts",
            bus: "core",
            aggregateType: "Account",
            aggregateId,
            expectedVersion: 0,
            correlationId: `${aggregateId}-cmd`,
            causationId: `${aggregateId}-cmd`,
            now: new Date(),
          },
          [
            { type: "AccountOpened", data: { accountId: aggregateId, owner: "poison" } },
            // Valid JSON and a valid envelope, but no DynamoDB number holds 1e300: every write fails.
            { type: "FundsDeposited", data: { accountId: aggregateId, amountCents: 1e300 } },
          ],
        );
        // Stamped as a command handler stamps AccountOpened: schema version 2 (events/upcasters.ts).
        const stamped = {
          ...commit,
          events: commit.events.map((e) => (e.type === "AccountOpened" ? { ...e, schemaversion: 2 } : e)),
        };
        await injecting().send(
          new PutRecordCommand({
            StreamName: streamName,
            PartitionKey: aggregateId,
            Data: Buffer.from(JSON.stringify(stamped)),
          }),
        );
        return;
      }
    }
  };

  const injector = (async () => {
    for (const event of schedule) {
      const wait = started + event.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      try {
        await inject(event);
      } catch (error) {
        problems.push(`injecting ${describe(event)}: ${(error as Error).message}`);
        log(`soak: injecting ${describe(event)} failed: ${(error as Error).message}`);
      }
    }
  })();
  const progress = setInterval(() => {
    const f = system.runner.faultCounts();
    log(
      `soak: t=${Math.round((Date.now() - started) / 1000)}s ops=${ops} transfers=${transfers.length} faults=${JSON.stringify(f)}`,
    );
  }, 5_000);
  try {
    await Promise.all([...Array.from({ length: options.clients }, (_, i) => runClient(i)), injector]);
  } finally {
    clearInterval(progress);
  }
  log(`soak: load done after ${Math.round((Date.now() - started) / 1000)} s: ${ops} ops; quiescing`);

  // Quiesce: every saga finished, then the archive holds everything appended so far.
  await transfersFinished(client, transfers).catch((error: Error) => problems.push(error.message));
  const behind = await archiveCaughtUp(system);
  if (behind !== undefined) problems.push(behind);

  const report = await checkOracle({
    url: system.url,
    dataDir,
    resources: system.resources,
    accounts,
    expectedTotalCents,
    transfers,
    poisonAggregates,
    poisonSequenceNumbers,
  });
  problems.push(...report.problems);
  const runner = system.runner.faultCounts();
  const faultCounts = {
    ...runner,
    restarts,
    poisonRecords: poisonSequenceNumbers.length,
    poisonEvents: poisonAggregates.length,
  };
  const faults = Object.values(faultCounts).reduce((sum, n) => sum + n, 0);
  log(
    `soak: oracle checked ${report.stats.archivedEvents} archived events against ${report.stats.views} view items; ` +
      `parked ${report.stats.parked}, relay dead letters ${report.stats.deadLettered}; faults ${JSON.stringify(faultCounts)}`,
  );
  const ok = problems.length === 0;
  const line = ok
    ? `oracle: ok ops=${ops} faults=${faults} seed=${seed}`
    : `oracle: FAILED ops=${ops} faults=${faults} seed=${seed}: ${problems.length} problems: ${problems.slice(0, 5).join("; ")}`;
  return { ok, ops, faults, faultCounts, problems, line };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "30" },
      seed: { type: "string", default: "1" },
      accounts: { type: "string", default: "12" },
      clients: { type: "string", default: "6" },
      crash: { type: "string" },
      "sdk-faults": { type: "string", default: "0.02" },
    },
  });
  const number = (name: string, text: string, max: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer from 1 to ${max}`);
    return n;
  };
  const probability = (name: string, text: string) => {
    const p = Number(text);
    if (!(p >= 0 && p < 0.5)) throw new Error(`--${name} must be a probability from 0 to below 0.5`);
    return p;
  };
  if (values.crash !== undefined) {
    // Kill -9 of the whole `canon dev` group N times under load, then the oracle (crash-soak.ts).
    const { runCrashSoak } = await import("./crash-soak.ts");
    const crashed = await runCrashSoak({
      crashes: number("crash", values.crash, 1_000),
      seed: number("seed", values.seed, 2 ** 31),
      accounts: Math.max(2, number("accounts", values.accounts, 1_000)),
      clients: number("clients", values.clients, 64),
    });
    for (const problem of crashed.problems.slice(5, 50)) console.log(`  ${problem}`);
    console.log(crashed.line);
    process.exitCode = crashed.ok ? 0 : 1;
    return;
  }
  const result = await runSoak({
    seconds: number("seconds", values.seconds, 3_600),
    seed: number("seed", values.seed, 2 ** 31),
    accounts: Math.max(2, number("accounts", values.accounts, 1_000)),
    clients: number("clients", values.clients, 64),
    sdkFaults: probability("sdk-faults", values["sdk-faults"]),
  });
  for (const problem of result.problems.slice(5, 50)) console.log(`  ${problem}`);
  console.log(result.line);
  process.exitCode = result.ok ? 0 : 1;
}

if (import.meta.main) await main();
