/** `canon tail`: the events on the buses of a running system, live, filtered. */

import { resolve } from "node:path";
import { consoleUrl, followTail } from "../../shared/console/client.ts";
import type { TailEvent, TailFilter } from "../../shared/console/source.ts";
import { isCanonError } from "../../shared/errors.ts";
import { parseCommandLine, refuse } from "./cli.ts";

export const tailUsage = `canon tail — follow the events on the buses, live

Usage: canon tail [options]

Prints every event appended to the buses of the \`canon dev\` running on the data folder, as it
arrives: time, bus, service, aggregate and version, type, data. A commit the arbiter did not
accept is marked (duplicate, conflict); a command's rejection shows as CommandRejected; a record
that is not a commit shows as (malformed) with the reason. Ctrl-C stops.

Options:
  --type <type>         Only events of this type (repeat, or comma-separate, for several)
  --aggregate <id>      Only this aggregate: its id (acc-1), type#id (Account#acc-1), or a
                        prefix ending in * (acc-*)
  --service <name>      Only events of this service's commits
  --bus <name>          Only this bus
  --last <n>            Start with the last n matching events already on the bus (default: 0)
  --count <n>           Stop after n events
  --json                One JSON object per line
  --data-dir <dir>      The data folder of the running \`canon dev\` (default: .canon/data)
  --url <url>           Follow the console at this URL instead
  -h, --help            Show this help

Exit status: 0 stopped (Ctrl-C, or --count reached); 1 no running system, or it went away;
2 usage.`;

const tailLine = {
  name: "canon tail",
  usage: tailUsage,
  options: {
    type: { type: "string", multiple: true },
    aggregate: { type: "string" },
    service: { type: "string" },
    bus: { type: "string" },
    last: { type: "string" },
    count: { type: "string" },
    json: { type: "boolean", default: false },
    "data-dir": { type: "string" },
    url: { type: "string" },
  },
} as const;

function count(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, not "${value}"`);
  return n;
}

export async function tailCommand(args: string[]): Promise<number> {
  const line = parseCommandLine(tailLine, args);
  if (typeof line === "number") return line;
  const { values } = line;
  let last: number;
  let limit: number | undefined;
  try {
    last = count(values.last, "last") ?? 0;
    limit = count(values.count, "count");
  } catch (error) {
    return refuse(tailLine, (error as Error).message);
  }
  const types = (values.type ?? [])
    .flatMap((t) => t.split(","))
    .map((t) => t.trim())
    .filter(Boolean);
  const filter: TailFilter = {
    ...(types.length > 0 ? { types } : {}),
    ...(values.aggregate ? { aggregate: values.aggregate } : {}),
    ...(values.service ? { service: values.service } : {}),
    ...(values.bus ? { bus: values.bus } : {}),
  };
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let seen = 0;
  try {
    const { url } = consoleUrl({ url: values.url, dataDir: resolve(values["data-dir"] ?? ".canon/data") });
    if (limit === 0) return 0;
    const onLive = () => console.error(`canon tail: following ${url} live (Ctrl-C stops)`);
    for await (const event of followTail(url, filter, { backlog: last, signal: stop.signal, onLive })) {
      console.log(values.json ? JSON.stringify(event) : formatEvent(event));
      seen += 1;
      if (limit !== undefined && seen >= limit) {
        stop.abort();
        break;
      }
    }
    return 0;
  } catch (error) {
    if (isCanonError(error, "not_running") || isCanonError(error, "console_unreachable")) {
      console.error(`canon tail: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** One line per event: `12:03:04.123  core  accounts  Account#acc-1 v2  FundsDeposited  {"amountCents":2500}`. */
export function formatEvent(event: TailEvent): string {
  const time = event.arrivedAt.slice(11, 23);
  const aggregate = event.aggregateId ? `${event.aggregateType}#${event.aggregateId} v${event.version}` : "-";
  const mark = event.verdict === "accepted" || event.verdict === "rejection" ? "" : ` [${event.verdict}]`;
  const detail = event.reason ?? JSON.stringify(event.data ?? {});
  return `${time}  ${event.bus}  ${event.service ?? "-"}  ${aggregate}  ${event.type}${mark}  ${detail}`;
}
