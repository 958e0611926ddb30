/** `canon console --aws`: the operator console over a deployed app, on this machine. */

import { awsRegion, isAwsTargetError, openAwsSource } from "./aws-target.ts";
import { parseCommandLine, refuse } from "./cli.ts";
import { untilSignal } from "./until-signal.ts";

export const consoleUsage = `canon console — the operator console for the app deployed to AWS

Usage: canon console --aws [options]

Serves the same console as \`canon dev\` (at /), reading the deployed app instead of the local
cloud: CloudWatch (stream rates, the relay's and the archiver's iterator age, queue depths),
Lambda's event source mappings (live, detached, paused), the warm-up state machines, and the
app's own queues, tables and archive. Warm-ups and redrives work from it; a blue/green rebuild
is local only. It listens on this machine only and uses your AWS credentials (AWS_PROFILE,
SSO, environment): give them the operator policy the ConsoleAccess stack deploys
(docs/deploy.md). No endpoint is deployed for it. \`canon status --url <its URL>\` and
\`canon tail --url <its URL>\` read it from a terminal.

Options:
  --aws             Read the deployed app (required: the local console is part of \`canon dev\`)
  --region <name>   The app's region (default: $AWS_REGION, $AWS_DEFAULT_REGION)
  --port <n>        HTTP port (default: 4100)
  --host <addr>     Address to listen on (default: 127.0.0.1)
  -h, --help        Show this help

Exit status: 0 on Ctrl-C; 1 the account could not be read (no credentials, no region, access
denied, nothing deployed); 2 usage.`;

const consoleLine = {
  name: "canon console",
  usage: consoleUsage,
  options: {
    aws: { type: "boolean", default: false },
    region: { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
  },
} as const;

export async function consoleCommand(args: string[], repoRoot: string): Promise<number> {
  const line = parseCommandLine(consoleLine, args);
  if (typeof line === "number") return line;
  const { values } = line;
  if (!values.aws) {
    const reason = "say --aws to read the deployed app (the local console is served by `canon dev` at /)";
    return refuse(consoleLine, reason, { usage: false });
  }
  const port = Number(values.port ?? 4100);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return refuse(consoleLine, `--port must be an integer from 0 to 65535, not "${values.port}"`, { usage: false });
  }
  let opened: Awaited<ReturnType<typeof openAwsSource>>;
  let region: string;
  try {
    region = awsRegion(values.region);
    opened = await openAwsSource(region, {
      onMissing: (missing) => console.warn(`canon console: not deployed (yet): ${missing.join(", ")}`),
    });
  } catch (error) {
    if (!isAwsTargetError(error)) throw error;
    console.error(`canon console: ${error.message}`);
    return error.exitCode;
  }
  const { source, prefix } = opened;
  const { serveConsole } = await import("../../shared/console/server.ts");
  let served: Awaited<ReturnType<typeof serveConsole>>;
  try {
    served = await serveConsole({ source, repoRoot, host: values.host ?? "127.0.0.1", port });
  } catch (error) {
    await source.stop();
    console.error(`canon console: cannot listen: ${(error as Error).message}`);
    return 1;
  }
  console.log(`canon console: ${prefix} in ${region}
  console   ${served.url}/
  status    npx canon status --url ${served.url}
  tail      npx canon tail --url ${served.url}
Press Ctrl-C to stop.`);
  await untilSignal("canon console", () => served.stop());
  return 0;
}
