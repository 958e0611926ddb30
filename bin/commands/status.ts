/** `canon status`: buses, archive, projections and dead letters of a running system at a glance. */

import { resolve } from "node:path";
import { consoleGet, consoleUrl } from "../../shared/console/client.ts";
import type { Overview, ReaderLag } from "../../shared/console/source.ts";
import { isCanonError } from "../../shared/errors.ts";
import { awsRegion, isAwsTargetError, openAwsSource } from "./aws-target.ts";
import { parseCommandLine, refuse } from "./cli.ts";

export const statusUsage = `canon status — a running system at a glance

Usage: canon status [options]

Shows each bus (shards, records, records/s, how far its readers are behind the stream's tip: the
relay and the archiver; for a telemetry bus, the journey indexer and the columnar store), the
archive (objects, records, lag behind the stream), every projection (live, warming up, detached or
rebuilding; items; messages waiting in its queue; dead letters; parked aggregates) and what is parked or dead-lettered. Reads the console API of the \`canon dev\`
running on the data folder (the same views as the web console at its URL).

With --aws it reads the app deployed to AWS directly, with your credentials (as \`canon console
--aws\` does), and exits: a health check for a script or a schedule.

Options:
  --data-dir <dir>  The data folder of the running \`canon dev\` (default: .canon/data)
  --url <url>       Ask the console at this URL instead (e.g. http://127.0.0.1:4000)
  --aws             Read the app deployed to AWS instead
  --region <name>   With --aws: the app's region (default: $AWS_REGION, $AWS_DEFAULT_REGION)
  --json            Print the whole overview as JSON
  -h, --help        Show this help

Exit status: 0 all is well; 3 something needs attention (a parked aggregate or a message in a
dead-letter queue; see \`canon dlq list\`); 1 no running system could be reached (with --aws: the
account could not be read); 2 usage.`;

const statusLine = {
  name: "canon status",
  usage: statusUsage,
  options: {
    "data-dir": { type: "string" },
    url: { type: "string" },
    aws: { type: "boolean", default: false },
    region: { type: "string" },
    json: { type: "boolean", default: false },
  },
} as const;

export async function statusCommand(args: string[]): Promise<number> {
  const line = parseCommandLine(statusLine, args);
  if (typeof line === "number") return line;
  const { values } = line;
  if (values.aws && values.url !== undefined) {
    return refuse(statusLine, "--aws and --url each name what to read: give one", { usage: false });
  }
  let overview: Overview;
  let target: { url?: string; startedAt?: string };
  try {
    if (values.aws) {
      const region = awsRegion(values.region);
      ({ overview } = await awsOverview(region));
      target = {};
    } else {
      const local = consoleUrl({ url: values.url, dataDir: resolve(values["data-dir"] ?? ".canon/data") });
      target = local;
      overview = await consoleGet<Overview>(local.url, "overview");
    }
  } catch (error) {
    if (isCanonError(error, "not_running") || isCanonError(error, "console_unreachable")) {
      console.error(`canon status: ${error.message}`);
      return 1;
    }
    if (isAwsTargetError(error)) {
      console.error(`canon status: ${error.message}`);
      return error.exitCode;
    }
    throw error;
  }
  const attention = needsAttention(overview);
  if (values.json) {
    console.log(JSON.stringify(overview, null, 2));
    return attention ? 3 : 0;
  }
  console.log(formatStatus(overview, target));
  return attention ? 3 : 0;
}

/** One overview of the deployed app, after the source's first look at it and at CloudWatch. */
async function awsOverview(region: string): Promise<{ overview: Overview }> {
  const { source } = await openAwsSource(region);
  try {
    await source.ready();
    return { overview: await source.overview() };
  } finally {
    await source.stop();
  }
}

/** Something an operator must act on: a parked aggregate or a dead-lettered message. */
export function needsAttention(overview: Overview): boolean {
  return (
    overview.deadLetters.parked.length > 0 || overview.deadLetters.deadLetterQueues.some((queue) => queue.messages > 0)
  );
}

const plural = (n: number, word: string) => `${n.toLocaleString("en")} ${word}${n === 1 ? "" : "s"}`;

function lagText(lag: ReaderLag): string {
  const about = lag.atLeast ? "≥ " : lag.fromAge ? "≈ " : "";
  return lag.records === 0 && lag.ageMs === 0
    ? "caught up"
    : `${about}${lag.records} behind (${Math.round(lag.ageMs / 1000)} s)`;
}

function sumLag(lags: readonly ReaderLag[]): ReaderLag {
  return {
    records: lags.reduce((sum, l) => sum + l.records, 0),
    ageMs: Math.max(0, ...lags.map((l) => l.ageMs)),
    atLeast: lags.some((l) => l.atLeast),
    fromAge: lags.some((l) => l.fromAge),
  };
}

/** The status as text, one line per bus, archive, projection and problem. */
export function formatStatus(o: Overview, target: { url?: string; startedAt?: string }): string {
  const lines: string[] = [];
  const since = target.startedAt ? `, running since ${target.startedAt}` : "";
  const where = o.target?.kind === "aws" ? ` (deployed, AWS ${o.target.region})` : "";
  lines.push(`${o.prefix}${where}${target.url ? ` at ${target.url}` : ""}${since}`, "");
  for (const warning of o.warnings ?? []) lines.push(`warning: ${warning}`);
  if (o.warnings?.length) lines.push("");
  const width = Math.max(...o.buses.map((b) => b.bus.length), ...o.projections.map((p) => p.name.length), 8);
  lines.push("Buses");
  for (const bus of o.buses) {
    const records = bus.shards.reduce((sum, s) => sum + s.records, 0);
    // A telemetry bus (law K) is read by its journey indexer and its columnar store, not a relay and an archiver.
    const [first, second] = bus.kind === "telemetry" ? ["journey indexer", "columnar store"] : ["relay", "archiver"];
    lines.push(
      `  ${bus.bus.padEnd(width)}  ${plural(bus.shards.length, "shard").padEnd(9)} ${plural(records, "record").padEnd(14)} ` +
        `${bus.recordsPerSecond.toFixed(1).padStart(6)} rec/s  ${first} ${lagText(sumLag(bus.shards.map((s) => s.relay)))}, ` +
        `${second} ${lagText(sumLag(bus.shards.map((s) => s.archiver)))}${bus.caughtUp ? "" : "  (still reading the stream)"}`,
    );
  }
  lines.push("Archive");
  for (const a of o.archive) {
    lines.push(
      `  ${a.bus.padEnd(width)}  ${plural(a.objects, "object").padEnd(9)} ${plural(a.records, "record").padEnd(14)} ` +
        `${lagText(sumLag(a.shards.map((s) => s.lag)))}`,
    );
  }
  lines.push("Projections");
  for (const p of o.projections) {
    const items = p.items ? `${p.items.atLeast ? "≥ " : ""}${plural(p.items.count, "item")}` : "? items";
    const queued = p.queue.visible + p.queue.inFlight;
    const flags = [
      p.deadLetters > 0 ? `${p.deadLetters} dead-lettered` : "",
      p.parked > 0 ? `${p.parked} parked` : "",
      p.status === "live" ? "" : p.detail,
    ].filter(Boolean);
    lines.push(
      `  ${p.name.padEnd(width)}  ${p.status.padEnd(10)} ${items.padEnd(12)} ${`${queued} queued`.padEnd(10)}` +
        `${flags.length > 0 ? `  ${flags.join("; ")}` : ""}`,
    );
  }
  const running = o.replays.filter((job) => job.state === "running");
  if (running.length > 0) {
    lines.push("Warm-ups and rebuilds");
    for (const job of running) {
      const p = job.progress;
      lines.push(
        `  ${job.projection.padEnd(width)}  ${job.action}  ${p ? `${p.phase} ${p.events} events, ${Math.round((100 * p.bytes) / Math.max(p.totalBytes, 1))}%` : "starting"}`,
      );
    }
  }
  lines.push("Dead letters");
  const queues = o.deadLetters.deadLetterQueues.filter((q) => q.messages > 0);
  if (o.deadLetters.parked.length === 0 && queues.length === 0) {
    lines.push("  Nothing parked; every dead-letter queue is empty.");
  }
  for (const park of o.deadLetters.parked) {
    lines.push(`  parked  ${park.projection} ${park.group}: ${plural(park.events, "event")} — ${park.reason}`);
  }
  for (const queue of queues) {
    const reason = queue.sample.find((m) => m.reason)?.reason;
    lines.push(`  queue   ${queue.queue}: ${plural(queue.messages, "message")}${reason ? ` — ${reason}` : ""}`);
  }
  if (needsAttention(o)) lines.push("", "Needs attention: see `canon dlq list`, then `canon dlq redrive`.");
  return lines.map((line) => line.trimEnd()).join("\n");
}
