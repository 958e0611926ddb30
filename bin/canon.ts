#!/usr/bin/env node
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
/**
 * The `canon` command. Subcommands:
 *   canon dev    run the whole system locally (what `npm start` runs)
 */
import { parseArgs } from "node:util";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const usage = `canon — operate a Canon event-sourced backend

Usage: canon <command> [options]

Commands:
  dev        Run the whole system locally: embedded local cloud, functions, HTTP API

Options:
  -h, --help Show help (also: canon <command> --help)

Node ${process.versions.node}`;

const devUsage = `canon dev — run the whole system on this machine

Usage: canon dev [options]

Starts the embedded local cloud (Kinesis, DynamoDB, SNS, SQS, S3 emulators from npm; no
Docker, no AWS account), creates every stream, topic, queue and table of the app, runs every
function under the local runner, and serves the HTTP API. Ctrl-C stops everything.

Options:
  --port <n>        HTTP port (default: $CANON_PORT or 4000)
  --host <addr>     Address to listen on (default: 127.0.0.1)
  --data-dir <dir>  Where the local cloud keeps its data (default: .canon/data)
  --external        Use the AWS endpoints in the environment (e.g. LocalStack via
                    AWS_ENDPOINT_URL) instead of starting the emulators
  -h, --help        Show this help`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    console.log(usage);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case "dev":
      return dev(rest);
    default:
      console.error(`canon: unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}

const devOptions = {
  port: { type: "string" },
  host: { type: "string" },
  "data-dir": { type: "string" },
  external: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

async function dev(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof devOptions; strict: true }>>;
  try {
    parsed = parseArgs({ args, options: devOptions, strict: true });
  } catch (error) {
    console.error(`canon dev: ${(error as Error).message}\n\n${devUsage}`);
    return 2;
  }
  const values = parsed.values;
  if (values.help) {
    console.log(devUsage);
    return 0;
  }
  const port = Number(values.port ?? process.env.CANON_PORT ?? 4000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(
      `canon dev: --port must be an integer from 0 to 65535, not "${values.port ?? process.env.CANON_PORT}"`,
    );
    return 2;
  }
  const { startDev } = await import("../shared/local-cloud/dev.ts");
  const { app } = await import("../functions/app.ts");
  const { contracts } = await import("../functions/api/contracts.ts");
  const started = Date.now();
  console.log("canon: starting the local cloud …");
  const system = await startDev({
    app,
    contracts,
    repoRoot,
    dataDir: resolve(values["data-dir"] ?? ".canon/data"),
    port,
    host: values.host,
    external: values.external,
  });
  console.log(`canon: ready in ${((Date.now() - started) / 1000).toFixed(1)} s
  API       ${system.url}
  health    ${system.url}/health
  commands  POST ${system.url}/commands/{service}/{command}
  outcomes  GET  ${system.url}/commands/{commandId}
  views     GET  ${system.url}/views/{service}/{view}/{key}
  functions ${system.runner.functions.join(", ")}
Press Ctrl-C to stop.`);
  await new Promise<void>((resolveStop) => {
    let stopping = false;
    const onSignal = (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`\ncanon: ${signal}: stopping …`);
      system.stop().then(() => {
        console.log("canon: stopped");
        resolveStop();
      });
    };
    process.once("SIGINT", () => onSignal("SIGINT"));
    process.once("SIGTERM", () => onSignal("SIGTERM"));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error("canon:", error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
