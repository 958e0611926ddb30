/**
 * One local replay in a process of its own, so its peak memory is its own and a test or the
 * bench can kill it (-9) mid-way: `node bench/replay-child.ts '<json options>'`, with the AWS
 * endpoint variables pointing at the emulators. Prints one JSON line: what the replay reports,
 * and the process's peak RSS.
 */
import { replayIntoProjection } from "../shared/archive/replay.ts";
import { destroyClients } from "../shared/aws/clients.ts";
import { envNames } from "../shared/plan.ts";
import type { ChildReplay } from "./replay-scale.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as ChildReplay;
process.env[envNames.table] = options.table;
process.env.POWERTOOLS_LOG_LEVEL ??= "ERROR";
const { accountEventTypes } = await import("../functions/accounts/decider.ts");
const { projectionLambda } = await import("../shared/entries/projection.ts");
const handler = projectionLambda(
  "accounts",
  options.projection === "daily-totals"
    ? (await import("../functions/accounts/daily-totals-projection.ts")).dailyTotals
    : (await import("../functions/accounts/balances-projection.ts")).balances,
);
const result = await replayIntoProjection({
  bucket: options.bucket,
  bus: options.bus,
  table: options.table,
  handler,
  name: `bench-${options.projection}`,
  eventTypes: accountEventTypes,
  upcasters: [],
  checkpointMs: options.checkpointMs,
  maxWritesPerSecond: options.maxWritesPerSecond,
});
destroyClients();
console.log(JSON.stringify({ ...result, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
