/**
 * The embedded local cloud: Kinesis (kinesalite), DynamoDB (dynalite), SNS + SQS + S3
 * (fauxqs, S3 objects as files) — npm emulators that speak the AWS wire protocols, each in its
 * own child process on a free loopback port, with its data under one folder so the stream,
 * tables, queues and archive survive a restart (docs/local-cloud.md).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { masterKeyFileIn, privacyEnv } from "../privacy/env.ts";
import { ensureMasterKeyFile } from "../privacy/key-wrapper.ts";
import { freePort } from "./ports.ts";

export type EmulatorKind = "kinesis" | "dynamodb" | "sqs-sns-s3";

const emulatorKinds: readonly EmulatorKind[] = ["kinesis", "dynamodb", "sqs-sns-s3"];
const hostScript = fileURLToPath(new URL("./emulator-host.ts", import.meta.url));

export interface LocalCloud {
  /** Standard AWS SDK settings that point every client at the emulators. */
  readonly env: Readonly<Record<string, string>>;
  readonly dataDir: string;
  /**
   * Stops and starts one emulator on the same port and data (fault injection, tests): gracefully,
   * or with `{ kill: true }` by SIGKILL, as a crash would.
   */
  restart(kind: EmulatorKind, options?: { readonly kill?: boolean }): Promise<void>;
  /** Stops every emulator; resolves when all processes have exited. */
  stop(): Promise<void>;
}

interface Running {
  process: ChildProcess;
  readonly port: number;
}

/** Starts the emulators (in parallel) and resolves when all of them serve. */
export async function startLocalCloud(options: { readonly dataDir: string }): Promise<LocalCloud> {
  mkdirSync(options.dataDir, { recursive: true });
  const running = new Map<EmulatorKind, Running>();
  const start = async (kind: EmulatorKind, port: number) => {
    const child = await launchEmulator(kind, port, join(options.dataDir, kind));
    running.set(kind, { process: child, port });
  };
  try {
    const ports = await Promise.all(emulatorKinds.map(() => freePort()));
    await Promise.all(emulatorKinds.map((kind, i) => start(kind, ports[i] as number)));
  } catch (error) {
    await Promise.all([...running.values()].map((r) => terminate(r.process)));
    throw error;
  }
  const url = (kind: EmulatorKind) => `http://127.0.0.1:${running.get(kind)?.port}`;
  const env = {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_ENDPOINT_URL_KINESIS: url("kinesis"),
    AWS_ENDPOINT_URL_DYNAMODB: url("dynamodb"),
    AWS_ENDPOINT_URL_SNS: url("sqs-sns-s3"),
    AWS_ENDPOINT_URL_SQS: url("sqs-sns-s3"),
    AWS_ENDPOINT_URL_S3: url("sqs-sns-s3"),
    // Personal data's data keys are wrapped by a master key kept with the rest of the data (docs/privacy.md).
    [privacyEnv.masterKeyFile]: ensureMasterKeyFile(masterKeyFileIn(options.dataDir)),
  };
  return {
    env,
    dataDir: options.dataDir,
    async restart(kind, restartOptions) {
      const current = running.get(kind);
      if (current === undefined) throw new Error(`emulator ${kind} is not running`);
      await (restartOptions?.kill ? kill(current.process) : terminate(current.process));
      await start(kind, current.port);
    },
    async stop() {
      await Promise.all([...running.values()].map((r) => terminate(r.process)));
      running.clear();
    },
  };
}

/**
 * Spawns one emulator host on Node 24 (this process's binary) and waits for its ready line;
 * rejects with the host's message if it exits first.
 */
export function launchEmulator(kind: EmulatorKind, port: number, dataDir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [hostScript, kind, String(port), dataDir], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, NODE_OPTIONS: "" },
    });
    const stderr: string[] = [];
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr.push(chunk.toString());
      if (stderr.length > 50) stderr.shift();
      if (process.env.CANON_DEBUG_EMULATORS) process.stderr.write(`[${kind}] ${chunk}`);
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`emulator ${kind} did not start within 60 s:\n${stderr.join("")}`));
    }, 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      // Code 3: a data folder it cannot use; the message says which file, why, and what to do.
      if (code === 3) reject(new Error(stderr.join("").trim()));
      else reject(new Error(`emulator ${kind} exited with code ${code}:\n${stderr.join("")}`));
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      if (line.includes('"ready":true')) {
        clearTimeout(timer);
        resolve(child);
      } else if (process.env.CANON_DEBUG_EMULATORS) {
        process.stderr.write(`[${kind}] ${line}\n`);
      }
    });
  });
}

/** SIGKILL, as a crash would stop it; resolves on exit. */
function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/**
 * Stops a child gracefully by closing its stdin (it closes its server and data, then exits), then
 * SIGTERM and SIGKILL after `graceMs`; resolves on exit. Kinesis needs no grace to keep what it
 * acknowledged: kinesalite has every record in LevelDB's log before it answers (docs/local-cloud.md).
 */
function terminate(child: ChildProcess, graceMs = 2_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const term = setTimeout(() => child.kill("SIGTERM"), graceMs);
    const kill = setTimeout(() => child.kill("SIGKILL"), graceMs + 1_000);
    child.once("exit", () => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve();
    });
    child.stdin?.end();
  });
}
