/**
 * Replay at archive scale (issue 13): an archive of `events` account events over `aggregates`
 * accounts written straight in the archive's layout (archive-generator.ts), then replayed into
 * a fresh balances table by a process of its own (replay-child.ts, so its peak RSS is the
 * replay's), beside raw BatchWriteItem on the same emulator in the same run. Then the same
 * replay again, killed with SIGKILL at its first checkpoint and started again: it must resume
 * from the checkpoint and end equal. Both tables are checked item by item against the fold of
 * the generated history.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { destroyClients, dynamoClient, s3Client } from "../shared/aws/clients.ts";
import { createTableIfMissing, scanItems } from "../shared/aws/tables.ts";
import { startLocalCloud } from "../shared/local-cloud/cloud.ts";
import { type GeneratedArchive, generateArchive } from "./archive-generator.ts";
import { measureRawBatchWrite } from "./measure.ts";

export interface ReplayScaleFigures {
  readonly events: number;
  readonly aggregates: number;
  readonly records: number;
  readonly objects: number;
  readonly archiveMb: number;
  readonly generateSeconds: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  /** Raw BatchWriteItem on the same emulator, same run: items/s. */
  readonly rawWritesPerSecond: number;
  readonly peakRssMb: number;
  /** The replay killed at its first checkpoint, then run again. */
  readonly resume: { readonly killedAfterEvents: number; readonly resumedAfter: number; readonly seconds: number };
  /** Both tables equal the fold of the generated history, item by item. */
  readonly equal: boolean;
}

const childScript = join(import.meta.dirname, "replay-child.ts");
const bus = "core";
const bucket = "bench-archive";

export async function measureReplayAtScale(options: {
  readonly events: number;
  readonly aggregates: number;
  readonly log: (line: string) => void;
}): Promise<ReplayScaleFigures> {
  const dataDir = mkdtempSync(join(tmpdir(), "canon-replay-scale-"));
  const cloud = await startLocalCloud({ dataDir });
  const saved = { ...process.env };
  Object.assign(process.env, cloud.env);
  try {
    await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
    options.log(`bench:   writing an archive of ${options.events} events over ${options.aggregates} accounts …`);
    const archive = await generateArchive({ bucket, bus, events: options.events, aggregates: options.aggregates });
    options.log(
      `bench:   ${archive.records} records in ${archive.objects} objects, ${(archive.bytes / 1_048_576).toFixed(1)} MB gzip, in ${archive.seconds.toFixed(1)} s`,
    );
    await createTableIfMissing("bench-raw");
    const rawWritesPerSecond = await measureRawBatchWrite("bench-raw", 50_000, 4);
    options.log(`bench:   raw BatchWriteItem: ${Math.round(rawWritesPerSecond)} items/s`);

    await createTableIfMissing("bench-replay");
    const child = { bucket, bus, projection: "balances" } as const;
    const run = await replayInChild({ ...child, table: "bench-replay" }, cloud.env);
    options.log(
      `bench:   replayed ${run.events} events in ${run.seconds.toFixed(1)} s, peak RSS ${run.maxRssMb.toFixed(0)} MB`,
    );
    const firstEqual = await equalsExpected("bench-replay", archive);

    await createTableIfMissing("bench-resume");
    const killed = await replayInChild(
      { ...child, table: "bench-resume", checkpointMs: 1_000 },
      cloud.env,
      "kill at checkpoint",
    );
    const resumed = await replayInChild({ ...child, table: "bench-resume" }, cloud.env);
    options.log(
      `bench:   killed at a checkpoint after ${killed.events} events; resumed after ${resumed.resumedAfter ?? 0} in ${resumed.seconds.toFixed(1)} s`,
    );
    const resumedEqual = await equalsExpected("bench-resume", archive);
    return {
      events: run.events,
      aggregates: options.aggregates,
      records: archive.records,
      objects: archive.objects,
      archiveMb: archive.bytes / 1_048_576,
      generateSeconds: archive.seconds,
      seconds: run.seconds,
      eventsPerSecond: run.events / run.seconds,
      rawWritesPerSecond,
      peakRssMb: run.maxRssMb,
      resume: { killedAfterEvents: killed.events, resumedAfter: resumed.resumedAfter ?? 0, seconds: resumed.seconds },
      equal: firstEqual && resumedEqual && resumed.resumedAfter !== undefined,
    };
  } finally {
    destroyClients();
    await cloud.stop();
    for (const key of Object.keys(cloud.env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export interface ChildResult {
  readonly events: number;
  readonly seconds: number;
  readonly resumedAfter?: number;
  readonly maxRssMb: number;
}

/** Options of one replay in a child process (bench/replay-child.ts). */
export interface ChildReplay {
  readonly bucket: string;
  readonly bus: string;
  readonly table: string;
  readonly projection: "balances" | "daily-totals";
  readonly checkpointMs?: number;
  readonly maxWritesPerSecond?: number;
}

/**
 * Runs a replay in a child process; with `kill`, kills it (-9) once its first checkpoint is in
 * the table, and resolves with the events that checkpoint covers.
 */
export async function replayInChild(
  options: ChildReplay,
  env: Readonly<Record<string, string>>,
  kill?: "kill at checkpoint",
): Promise<ChildResult> {
  const child = spawn(process.execPath, [childScript, JSON.stringify(options)], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout?.on("data", (chunk) => {
    out += String(chunk);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  if (kill !== undefined) {
    const events = await firstCheckpoint(options.table, child);
    child.kill("SIGKILL");
    await exited;
    return { events, seconds: 0, maxRssMb: 0 };
  }
  const code = await exited;
  if (code !== 0) throw new Error(`the replay's process exited with ${code}`);
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as ChildResult;
}

async function firstCheckpoint(table: string, child: ChildProcess): Promise<number> {
  for (;;) {
    if (child.exitCode !== null) throw new Error("the replay finished before its first checkpoint: nothing to resume");
    const item = await dynamoClient().send(new GetCommand({ TableName: table, Key: { id: "replay#checkpoint" } }));
    if (item.Item !== undefined) return (JSON.parse(String(item.Item.checkpoint)) as { events: number }).events;
    await sleep(20);
  }
}

/** Every item of the table, against the generated history's fold (and nothing else left in it). */
async function equalsExpected(table: string, archive: GeneratedArchive): Promise<boolean> {
  const items = await scanItems(table);
  if (items.size !== archive.expected.size) return false;
  for (const [id, item] of items) {
    const want = archive.expected.get(id);
    if (
      want === undefined ||
      item.balanceCents !== want.balanceCents ||
      item.owner !== want.owner ||
      item.version !== want.version
    ) {
      return false;
    }
  }
  return true;
}
