/** `canon projection warm-up|rebuild`: grow a projection from the archive; rebuild one blue/green. */

import { resolve } from "node:path";
import { upcasters } from "../../events/upcasters.ts";
import { app } from "../../functions/app.ts";
import { isCanonError } from "../../shared/errors.ts";
import { rebuildProjection, warmUpProjection } from "../../shared/local-cloud/projection-ops.ts";
import { parseCommandLine, refuse } from "./cli.ts";
import { connect } from "./connect.ts";
import { progressReporter } from "./progress.ts";

export const projectionUsage = `canon projection — grow projections from the archive

Usage: canon projection warm-up <service.projection> [options]
       canon projection rebuild <service.projection> [options]

warm-up  For a projection declared with warmUp: true (its queue subscribed and buffering, no
         consumer yet): waits until the archive has passed the moment of subscription, replays
         the archive into its table, then attaches its consumer, which drains the buffer. No
         gap, no double apply.
rebuild  Blue/green: builds a new table beside the current one, moves the consumer to it,
         replays the archive into it, switches reads to it, then retires the old table. The old
         table answers reads until the switch.

Both steer the \`canon dev\` running on the data folder. A replay keeps a checkpoint in the
table it fills: stopped (Ctrl-C, kill -9), the same command resumes it from there.

Options:
  --data-dir <dir>               The data folder of the running \`canon dev\` (default: .canon/data)
  --max-writes-per-second <n>    Spare the table: at most n writes a second (default: no limit)
  --json                         Print the result as JSON
  -h, --help                     Show this help

Exit status: 0 done, 1 failed, 2 usage (unknown projection, wrong state).`;

const projectionLine = {
  name: "canon projection",
  usage: projectionUsage,
  options: {
    "data-dir": { type: "string" },
    "max-writes-per-second": { type: "string" },
    json: { type: "boolean", default: false },
  },
  actions: { "warm-up": ["<service.projection>"], rebuild: ["<service.projection>"] },
} as const;

/** `--max-writes-per-second`: a positive number, or absent (no limit); anything else is the operator's mistake. */
export function parseWriteLimit(raw: string | undefined): number | undefined | Error {
  if (raw === undefined) return undefined;
  const limit = Number(raw);
  if (raw.trim() !== "" && Number.isFinite(limit) && limit > 0) return limit;
  return new Error(`--max-writes-per-second takes a positive number of writes a second, not "${raw}"`);
}

export async function projectionCommand(args: string[], repoRoot: string): Promise<number> {
  const line = parseCommandLine(projectionLine, args);
  if (typeof line === "number") return line;
  const { values, action } = line;
  const projection = line.operands[0] as string;
  const maxWritesPerSecond = parseWriteLimit(values["max-writes-per-second"]);
  if (maxWritesPerSecond instanceof Error) return refuse(projectionLine, maxWritesPerSecond.message);
  const { plan, resources } = await connect(resolve(values["data-dir"] ?? ".canon/data"));
  const progress = progressReporter(`${action} ${projection}`);
  const run = action === "warm-up" ? warmUpProjection : rebuildProjection;
  try {
    const result = await run({
      app,
      plan,
      resources,
      repoRoot,
      upcasters,
      projection,
      maxWritesPerSecond,
      onStatus: (message) => {
        if (!values.json) console.error(`canon: ${projection}: ${message}`);
      },
      onProgress: (p) => {
        if (!values.json) progress.update(p);
      },
    });
    progress.done();
    if (values.json) console.log(JSON.stringify({ projection, action, ...result }));
    else
      console.log(
        `canon: ${projection}: ${action} done — ${result.events} events replayed in ${result.seconds.toFixed(1)} s`,
      );
    return 0;
  } catch (error) {
    progress.done();
    console.error(`canon projection ${action}: ${(error as Error).message}`);
    return isCanonError(error, "projection_op") ? 2 : 1;
  }
}
