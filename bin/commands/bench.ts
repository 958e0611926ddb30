/** `canon bench`: runs the project's benchmarks (`npm run bench`), when it has them. */

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { parseCommandLine, refuse } from "./cli.ts";

export const benchUsage = `canon bench — run the benchmarks

Usage: canon bench [-- <arguments for the benchmarks>]

Runs \`npm run bench\` in the project (its progress and results are the benchmarks' own),
passing on any arguments after \`--\`.

Options:
  -h, --help  Show this help

Exit status: the benchmarks' own (0 when they pass); 2 when the project has no \`bench\` script
in package.json (or on usage errors).`;

const benchLine = { name: "canon bench", usage: benchUsage, options: {} } as const;

export async function benchCommand(args: string[], repoRoot: string): Promise<number> {
  // Its own arguments come before `--` (only --help); the benchmarks' after it.
  const separator = args.indexOf("--");
  const own = separator < 0 ? args : args.slice(0, separator);
  const passed = separator < 0 ? [] : args.slice(separator + 1);
  const line = parseCommandLine(benchLine, own);
  if (typeof line === "number") return line;
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts?: Record<string, string> };
  if (pkg.scripts?.bench === undefined) {
    return refuse(benchLine, 'this project has no benchmarks yet (package.json has no "bench" script)', {
      usage: false,
    });
  }
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  // npm and the benchmarks run on this Node (the project's Node 24), not whatever is first on PATH.
  const path = [dirname(process.execPath), process.env.PATH].filter(Boolean).join(delimiter);
  const child = spawn(npm, ["run", "bench", ...(passed.length > 0 ? ["--", ...passed] : [])], {
    cwd: repoRoot,
    stdio: "inherit",
    env: { ...process.env, PATH: path },
  });
  return new Promise<number>((resolve) => {
    child.once("error", (error) => {
      console.error(`canon bench: could not run npm: ${error.message}`);
      resolve(1);
    });
    child.once("exit", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : 1)));
  });
}
