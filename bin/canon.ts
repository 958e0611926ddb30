#!/usr/bin/env node
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
/**
 * The `canon` command. Subcommands:
 *   canon dev    run the whole system locally (what `npm start` runs)
 *   canon dlq    what is parked or dead-lettered, and redrive it
 *   canon archive     verify the archive; query it with SQL
 *   canon projection  warm a projection up from the archive; rebuild one blue/green
 *   canon status      buses, archive, projections and dead letters at a glance
 *   canon tail        follow the events on the buses, live
 *   canon console     the operator console over the app deployed to AWS
 *   canon bench       run the benchmarks
 *   canon add         scaffold a service, a command, a projection or a reactor
 *   canon subject     erase a subject's personal data (crypto-shredding)
 */
import { parseCommandLine, refuse } from "./commands/cli.ts";
import { untilSignal } from "./commands/until-signal.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const usage = `canon — operate a Canon event-sourced backend

Usage: canon <command> [options]

Commands:
  dev        Run the whole system locally: embedded local cloud, functions, HTTP API
  dlq        List parked events and dead-letter queues; redrive a parked aggregate
  archive    Verify the archive is complete; query it with SQL
  projection Warm a projection up from the archive; rebuild one blue/green
  status     Buses, archive, projections and dead letters of a running system at a glance
  tail       Follow the events on the buses, live, filtered by type, aggregate or service
  console    The operator console over the app deployed to AWS (--aws)
  bench      Run the benchmarks
  add        Scaffold a service, command, projection or reactor: its files, a test, its declaration
  subject    Erase a subject's personal data everywhere at once; show its record

Options:
  -h, --help Show help (also: canon <command> --help)

Node ${process.versions.node}`;

const devUsage = `canon dev — run the whole system on this machine

Usage: canon dev [options]

Starts the embedded local cloud (Kinesis, DynamoDB, SNS, SQS, S3 emulators from npm; no
Docker, no AWS account), creates every stream, topic, queue and table of the app, runs every
function under the local runner, and serves the HTTP API and the operator console (at /).
Ctrl-C stops everything.

Options:
  --port <n>        HTTP port (default: $CANON_PORT or 4000)
  --grpc-port <n>   Native gRPC port, HTTP/2 without TLS (default: $CANON_GRPC_PORT, else the
                    HTTP port + 1, or a free port if that one is taken: the banner names it);
                    Connect and gRPC-Web are served on both ports
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
    case "dlq":
      return dlq(rest);
    case "archive":
      return (await import("./commands/archive.ts")).archiveCommand(rest);
    case "projection":
      return (await import("./commands/projection.ts")).projectionCommand(rest, repoRoot);
    case "status":
      return (await import("./commands/status.ts")).statusCommand(rest);
    case "tail":
      return (await import("./commands/tail.ts")).tailCommand(rest);
    case "console":
      return (await import("./commands/console.ts")).consoleCommand(rest, repoRoot);
    case "bench":
      return (await import("./commands/bench.ts")).benchCommand(rest, repoRoot);
    case "add":
      return (await import("./commands/add.ts")).addCommand(rest, repoRoot);
    case "subject":
      return (await import("./commands/subject.ts")).subjectCommand(rest);
    default:
      return refuse({ name: "canon", usage }, `unknown command "${command}"`);
  }
}

const devLine = {
  name: "canon dev",
  usage: devUsage,
  options: {
    port: { type: "string" },
    "grpc-port": { type: "string" },
    host: { type: "string" },
    "data-dir": { type: "string" },
    external: { type: "boolean", default: false },
  },
} as const;

async function dev(args: string[]): Promise<number> {
  const line = parseCommandLine(devLine, args);
  if (typeof line === "number") return line;
  const { values } = line;
  const port = Number(values.port ?? process.env.CANON_PORT ?? 4000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    const given = values.port ?? process.env.CANON_PORT;
    return refuse(devLine, `--port must be an integer from 0 to 65535, not "${given}"`, { usage: false });
  }
  const grpcRaw = values["grpc-port"] ?? process.env.CANON_GRPC_PORT;
  const grpcPort = grpcRaw === undefined ? undefined : Number(grpcRaw);
  if (grpcPort !== undefined && !(Number.isInteger(grpcPort) && grpcPort >= 0 && grpcPort <= 65535)) {
    return refuse(devLine, `--grpc-port must be an integer from 0 to 65535, not "${grpcRaw}"`, { usage: false });
  }
  const { startDev } = await import("../shared/local-cloud/dev.ts");
  const { app } = await import("../functions/app.ts");
  const { contractsOf } = await import("../shared/domain/commands.ts");
  const started = Date.now();
  console.log("canon: starting the local cloud …");
  const system = await startDev({
    app,
    contracts: contractsOf(app),
    repoRoot,
    dataDir: resolve(values["data-dir"] ?? ".canon/data"),
    port,
    grpcPort,
    host: values.host,
    external: values.external,
    consoleEager: true,
  });
  console.log(`canon: ready in ${((Date.now() - started) / 1000).toFixed(1)} s
API       ${system.url}
console   ${system.url}/  (operator console; canon status, canon tail from a terminal)
health    ${system.url}/health
commands  POST ${system.url}/commands/{service}/{command}
outcomes  GET  ${system.url}/commands/{commandId}
views     GET  ${system.url}/views/{service}/{view}/{key}
grpc      ${system.grpcAddress}  (native gRPC, HTTP/2 without TLS; the services of events/proto)
connect   ${system.url}/{package}.{Service}/{Method}  (Connect and gRPC-Web, also on the gRPC port)
functions ${system.runner.functions.join(", ")}
Press Ctrl-C to stop.`);
  await untilSignal("canon", () => system.stop());
  return 0;
}

const dlqUsage = `canon dlq — what a running system could not process, and how to replay it

Usage: canon dlq list [options]
       canon dlq redrive <service.projection> <aggregate> [options]
       canon dlq move <queue> [options]

list     Every parked aggregate (per projection: its parked events in order, the reason the
         first one failed, after how many receives) and every dead-letter queue's depth, with
         the reason when a message carries one.
redrive  Replays one parked aggregate's events in order through the projection's own code (a
         request sent into the projection's queue, in the aggregate's message group) and waits
         for the outcome: cleared, or still parked with the new reason. <aggregate> is the
         message group (Account#acc-1) or just the aggregate id (acc-1) when unambiguous.
         A FIFO queue's own redrive would let later events overtake the parked ones; this keeps
         the order.
move     Sends a queue's dead letters back to it, once their cause is fixed (a command whose
         handler kept failing stays \`pending\` until then; a reactor's message): in order, in
         their message groups. <queue> is the planned queue id, e.g. accounts-commands (\`canon
         dlq list\` names the queues that hold dead letters).

Options:
  --data-dir <dir>  The data folder of the running \`canon dev\` (default: .canon/data)
  --json            Print JSON
  --skip <eventId>  redrive: drop the first parked event, unapplied (kept on record), if it
                    has this id; for an event the projection can never apply
  --timeout <s>     redrive: seconds to wait for the outcome (default: 30)
  --max <n>         move: at most this many messages (default: 1000)
  -h, --help        Show this help

Exit status: 0 on success (list: whatever is listed), 1 if a redrive did not clear or a move
was refused, 2 on usage errors.`;

const dlqLine = {
  name: "canon dlq",
  usage: dlqUsage,
  options: {
    "data-dir": { type: "string" },
    json: { type: "boolean", default: false },
    skip: { type: "string" },
    timeout: { type: "string" },
    max: { type: "string" },
  },
  actions: { list: [], redrive: ["<service.projection>", "<aggregate>"], move: ["<queue>"] },
} as const;

async function dlq(args: string[]): Promise<number> {
  const line = parseCommandLine(dlqLine, args);
  if (typeof line === "number") return line;
  const { values, action, operands } = line;
  const timeoutSeconds = Number(values.timeout ?? 30);
  const max = Number(values.max ?? 1000);
  if (action === "redrive" && !(Number.isFinite(timeoutSeconds) && timeoutSeconds > 0)) {
    return refuse(dlqLine, `--timeout takes a positive number of seconds, not "${values.timeout}"`);
  }
  if (action === "move" && !(Number.isInteger(max) && max > 0)) {
    return refuse(dlqLine, `--max takes a positive whole number of messages, not "${values.max}"`);
  }
  const { readEndpoints } = await import("../shared/runner/endpoints.ts");
  const { deadLetterReport, redrive, useEndpoints } = await import("../shared/runner/dead-letters.ts");
  const endpoints = readEndpoints(resolve(values["data-dir"] ?? ".canon/data"));
  useEndpoints(endpoints);

  if (action === "list") {
    const report = await deadLetterReport(endpoints);
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
      return 0;
    }
    const queues = report.deadLetterQueues.filter((q) => q.messages > 0);
    if (report.parked.length === 0 && queues.length === 0) {
      console.log("Nothing parked; every dead-letter queue is empty.");
      return 0;
    }
    console.log(`Parked aggregates: ${report.parked.length}`);
    for (const park of report.parked) {
      console.log(`  ${park.projection}  ${park.group}  ${park.events} event(s) parked since ${park.parkedAt}`);
      console.log(`    reason: ${park.reason} (after ${park.attempts} attempt(s))`);
      if (park.lastRedrive) console.log(`    last redrive ${park.lastRedrive.at}: ${park.lastRedrive.reason}`);
      for (const event of park.parked) {
        console.log(
          `    - ${event.type ?? "(malformed)"} v${event.version ?? "?"}  ${event.eventId ?? event.messageId}`,
        );
      }
    }
    console.log(`Dead-letter queues with messages: ${queues.length}`);
    for (const queue of queues) {
      const move = queue.movableTo ? ` (send them back: canon dlq move ${queue.movableTo})` : "";
      console.log(`  ${queue.queue}: ${queue.messages} message(s)${move}`);
      for (const m of queue.sample) console.log(`    - ${m.summary}${m.reason ? ` — ${m.reason}` : ""}`);
    }
    return 0;
  }

  if (action === "move") {
    const { moveDeadLetters } = await import("../shared/runner/move-dead-letters.ts");
    const { isCanonError } = await import("../shared/errors.ts");
    try {
      const moved = await moveDeadLetters(endpoints, operands[0] as string, { max });
      if (values.json) console.log(JSON.stringify(moved));
      else console.log(`canon dlq: ${moved.queue}: ${moved.moved} message(s) sent back, ${moved.left} left`);
      return 0;
    } catch (error) {
      if (!isCanonError(error, "redrive_refused")) throw error;
      console.error(`canon dlq: ${error.message}`);
      return 1;
    }
  }

  const [projection, aggregate] = operands as [string, string];
  const outcome = await redrive(endpoints, projection, aggregate, {
    skip: values.skip,
    timeoutMs: timeoutSeconds * 1000,
  });
  if (values.json) console.log(JSON.stringify(outcome));
  switch (outcome.outcome) {
    case "cleared":
      if (!values.json)
        console.log(
          `canon dlq: ${projection} ${outcome.group}: ${outcome.events} event(s) replayed in order; no longer parked`,
        );
      return 0;
    case "failed":
      if (!values.json) {
        console.error(
          `canon dlq: ${projection} ${outcome.group} is still parked: ${outcome.eventId ?? "an event"} failed: ${outcome.reason}`,
        );
      }
      return 1;
    case "timeout":
      if (!values.json) {
        console.error(`canon dlq: no outcome within ${timeoutSeconds} s; the request waits in the projection's queue`);
      }
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error("canon:", error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
