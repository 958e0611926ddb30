/**
 * Child-process entry that runs one emulator of the embedded local cloud:
 *   node emulator-host.ts <kinesis|dynamodb|sqs-sns-s3> <port> <dataDir>
 * Prints one JSON line `{"ready":true}` when it serves. It exits when its parent's pipe
 * closes (so a killed parent leaves no stray process) or on SIGTERM, not on SIGINT (below).
 */

import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { dirname, join } from "node:path";
import { freePort } from "./ports.ts";

const [kind, portText, dataDir] = process.argv.slice(2);
const port = Number(portText);
if (kind === undefined || dataDir === undefined || !Number.isInteger(port) || port <= 0) {
  console.error("usage: emulator-host.ts <kinesis|dynamodb|sqs-sns-s3> <port> <dataDir>");
  process.exit(2);
}
const dir: string = dataDir;
mkdirSync(dir, { recursive: true });
const require = createRequire(import.meta.url);

/** Kinesis persists on an interval; wait one interval before exiting so recent writes are on disk. */
const kinesisPersistMs = 250;
let stop: () => Promise<void> = async () => {};

async function start(): Promise<void> {
  switch (kind) {
    case "kinesis": {
      // kinesis-mock (Scala.js) reads its settings from the environment and must run from its package folder.
      const main = require.resolve("kinesis-local/main.js");
      Object.assign(process.env, {
        KINESIS_MOCK_PLAIN_PORT: String(port),
        KINESIS_MOCK_TLS_PORT: String(await freePort()),
        SHOULD_PERSIST_DATA: "true",
        LOAD_DATA_IF_EXISTS: "true",
        PERSIST_PATH: dir,
        PERSIST_INTERVAL: `${kinesisPersistMs}ms`,
        CREATE_STREAM_DURATION: "0ms",
        LOG_LEVEL: process.env.CANON_EMULATOR_LOG_LEVEL ?? "WARN",
        AWS_ACCOUNT_ID: "000000000000",
      });
      process.chdir(dirname(main));
      require(main);
      await waitForPort(port);
      stop = () => new Promise((resolve) => setTimeout(resolve, kinesisPersistMs * 3));
      return;
    }
    case "dynamodb": {
      const dynalite = require("dynalite") as (options: object) => net.Server;
      const server = dynalite({ path: dir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => resolve());
      });
      stop = () =>
        new Promise((resolve) => {
          server.close(() => resolve());
          // Clients keep connections alive; close them so the server can finish closing.
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
      return;
    }
    case "sqs-sns-s3": {
      listenOnLoopbackOnly();
      const { startFauxqs } = await import("fauxqs");
      // No `host`: queue URLs then use the request's host (127.0.0.1:port), the SDK's endpoint.
      const server = await startFauxqs({
        port,
        logger: false,
        dataDir: join(dir, "sqs-sns"),
        s3StorageDir: join(dir, "s3"),
      });
      stop = () => server.stop();
      return;
    }
    default:
      throw new Error(`unknown emulator "${kind}"`);
  }
}

/** fauxqs binds 0.0.0.0; servers started here must listen on loopback only. */
function listenOnLoopbackOnly(): void {
  const listen = net.Server.prototype.listen as (...args: unknown[]) => net.Server;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    const [first] = args;
    if (typeof first === "object" && first !== null && (first as net.ListenOptions).host === "0.0.0.0") {
      args[0] = { ...(first as net.ListenOptions), host: "127.0.0.1" };
    }
    return listen.apply(this, args);
  } as typeof net.Server.prototype.listen;
}

async function shutdown(code: number): Promise<never> {
  try {
    // Bounded: an emulator that will not close its connections must not hold up the stop.
    await Promise.race([stop(), new Promise((resolve) => setTimeout(resolve, 3_000))]);
  } finally {
    process.exit(code);
  }
}

async function waitForPort(target: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(target, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`emulator did not open port ${target}`);
}

process.on("SIGTERM", () => void shutdown(0));
// A terminal's Ctrl-C reaches every process of the foreground group, this one too. The parent
// decides when the emulator stops: after the functions that use it (then it closes the pipe);
// were the parent gone, the pipe closes and this exits all the same.
process.on("SIGINT", () => {});
process.stdin.on("end", () => void shutdown(0));
process.stdin.on("error", () => void shutdown(0));
process.stdin.resume();

start().then(
  () => process.stdout.write(`${JSON.stringify({ ready: true, kind, port })}\n`),
  (error: unknown) => {
    console.error(`emulator ${kind} failed to start:`, error);
    process.exit(1);
  },
);
