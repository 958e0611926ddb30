/**
 * `npm run soak -- --crash N [--seed S] [--accounts K] [--clients C]`: the bank under load while
 * the whole `canon dev` process group (the functions, the API and every emulator) is killed with
 * SIGKILL N times at seeded random moments and started again on the same data, as a laptop crash,
 * an OOM kill or a closed terminal does. Clients keep going through the crashes the way a real
 * client would: a request without an answer is sent again with the same Idempotency-Key.
 *
 * Then, on the same data once more, the oracle: every command the API acknowledged ends (none
 * pending), every one seen accepted is still accepted, money is conserved, every transfer ends,
 * views equal the fold of the archive, `canon archive verify` is green, every shard caught up and
 * nothing is dead-lettered or parked. The last line is `oracle: ok ops=… crashes=… seed=…`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { app } from "../functions/app.ts";
import { contractsOf } from "../shared/domain/commands.ts";
import { type DevSystem, startDev } from "../shared/local-cloud/dev.ts";
import { freePort } from "../shared/local-cloud/ports.ts";
import { seededRandom } from "../shared/runner/faults.ts";
import { checkOracle } from "./oracle.ts";
import { archiveCaughtUp, Client, transfersFinished } from "./soak-client.ts";

export interface CrashSoakOptions {
  readonly crashes: number;
  readonly seed: number;
  readonly accounts: number;
  readonly clients: number;
  /** Shortest and longest time under load between a start and its kill, in ms. @default 1500–5000 */
  readonly windowMs?: readonly [number, number];
  readonly log?: (line: string) => void;
}

export interface CrashSoakResult {
  readonly ok: boolean;
  readonly ops: number;
  readonly crashes: number;
  readonly problems: readonly string[];
  readonly line: string;
}

const repoRoot = resolve(import.meta.dirname, "..");
const canonBin = join(repoRoot, "bin/canon.ts");
const openingCents = 10_000;

/** `canon dev` in a process group of its own on a fixed port, ready to serve. */
async function startCanonDev(dataDir: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [canonBin, "dev", "--port", String(port), "--data-dir", dataDir], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const collect = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`canon dev did not get ready in 120 s:\n${output}`)), 120_000);
    child.stdout?.on("data", () => {
      if (output.includes("Press Ctrl-C to stop")) {
        clearTimeout(timer);
        ready();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`canon dev exited (${code}) before it was ready:\n${output}`));
    });
  });
  return child;
}

/** SIGKILL to the whole group, as a crash does; resolves once the group leader is gone. */
async function killGroup(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((done) => (child.exitCode !== null ? done() : child.once("exit", () => done())));
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
  await exited;
  // The emulators are in the group too; give the kernel a moment to release their ports and files.
  await sleep(200);
}

export async function runCrashSoak(options: CrashSoakOptions): Promise<CrashSoakResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const { seed } = options;
  const [shortest, longest] = options.windowMs ?? [1_500, 5_000];
  const random = seededRandom(seed >>> 0);
  const dataDir = mkdtempSync(join(tmpdir(), "canon-crash-soak-"));
  const port = await freePort();
  // Patient: a request may span several crashes and restarts (each ~10 s, more on a busy machine).
  const client = new Client(`http://127.0.0.1:${port}`, 600_000);
  const accounts = Array.from({ length: options.accounts }, (_, i) => `c${seed}-a${i}`);
  const problems: string[] = [];
  const accepted: { service: string; command: string; body: object; key: string }[] = [];
  const transfers: string[] = [];
  let expectedTotalCents = accounts.length * openingCents;
  let ops = 0;
  let crashes = 0;
  let loading = true;
  let child: ChildProcess | undefined;
  let system: DevSystem | undefined;
  log(`crash soak: seed=${seed} crashes=${options.crashes} accounts=${accounts.length} clients=${options.clients}`);
  try {
    child = await startCanonDev(dataDir, port);
    await Promise.all(
      accounts.map(async (accountId) => {
        await client.command("accounts", "OpenAccount", { accountId, owner: accountId }, `${accountId}-open`);
        await client.command("accounts", "Deposit", { accountId, amountCents: openingCents }, `${accountId}-seed`);
      }),
    );

    const runClient = async (index: number) => {
      const draw = seededRandom((seed ^ (index * 0x9e3779b1)) >>> 0);
      const pick = (n: number) => Math.floor(draw() * n);
      for (let n = 0; loading; n++) {
        const a = accounts[pick(accounts.length)] as string;
        const b = accounts[(accounts.indexOf(a) + 1 + pick(accounts.length - 1)) % accounts.length] as string;
        const roll = pick(10);
        const amountCents = 1 + pick(roll < 4 ? 500 : 800);
        const key = `c${seed}-c${index}-${n}`;
        const [service, command, body] =
          roll < 4
            ? ["accounts", "Deposit", { accountId: a, amountCents }]
            : roll < 7
              ? ["accounts", "Withdraw", { accountId: a, amountCents }]
              : ["transfers", "RequestTransfer", { transferId: key, fromAccountId: a, toAccountId: b, amountCents }];
        try {
          // Through a crash: the request or its outcome is asked again (same key) until it answers.
          const outcome = await client.command(service, command, body, key);
          if (outcome.status === "accepted") {
            accepted.push({ service, command, body, key });
            if (command === "Deposit") expectedTotalCents += amountCents;
            if (command === "Withdraw") expectedTotalCents -= amountCents;
            if (command === "RequestTransfer") transfers.push(key);
          }
          ops += 1;
        } catch (error) {
          problems.push(`client ${index}: ${(error as Error).message}`);
          return;
        }
      }
    };
    const clients = Array.from({ length: options.clients }, (_, i) => runClient(i));

    for (let i = 0; i < options.crashes; i++) {
      await sleep(shortest + Math.floor(random() * (longest - shortest)));
      const before = ops;
      await killGroup(child);
      crashes += 1;
      const t = Date.now();
      child = await startCanonDev(dataDir, port);
      log(`crash soak: crash ${crashes}: killed the group (${before} ops so far), up again in ${Date.now() - t} ms`);
    }
    loading = false;
    await Promise.all(clients);
    await killGroup(child);
    child = undefined;

    // Once more on the same data, in process, for the oracle's reads.
    system = await startDev({ app, contracts: contractsOf(app), repoRoot, dataDir, port });
    log(`crash soak: ${ops} ops through ${crashes} crashes; checking`);
    // Every command seen accepted is still accepted (asked again with its key: the same command).
    for (const c of accepted) {
      const outcome = await client.command(c.service, c.command, c.body, c.key).catch((e: Error) => ({
        status: `unanswered (${e.message})`,
      }));
      if (outcome.status !== "accepted") problems.push(`${c.command} ${c.key} was accepted, now ${outcome.status}`);
    }
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
      poisonAggregates: [],
      poisonSequenceNumbers: [],
    });
    problems.push(...report.problems);
    log(
      `crash soak: oracle checked ${report.stats.archivedEvents} archived events against ${report.stats.views} view items`,
    );
  } catch (error) {
    problems.push(`crash soak stopped: ${(error as Error).message}`);
  } finally {
    if (child !== undefined) await killGroup(child);
    await system?.stop();
    // CANON_SOAK_KEEP_DATA=1 keeps a failed run's data folder for a post-mortem.
    if (problems.length > 0 && process.env.CANON_SOAK_KEEP_DATA === "1") log(`crash soak: data kept in ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
  const ok = problems.length === 0;
  const line = ok
    ? `oracle: ok ops=${ops} crashes=${crashes} seed=${seed}`
    : `oracle: FAILED ops=${ops} crashes=${crashes} seed=${seed}: ${problems.length} problems: ${problems.slice(0, 5).join("; ")}`;
  return { ok, ops, crashes, problems, line };
}
