/** Test support: runs the real `canon` command (as `npm start` does) in a child process. */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { freePort } from "../../shared/local-cloud/ports.ts";
import { repoRoot } from "./system.ts";

export const canonBin = join(repoRoot, "bin/canon.ts");

export interface RunningCli {
  readonly url: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Sends a signal and resolves with the exit code once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `canon dev` on a free port and resolves once it prints that it is ready. In its own
 * process group, `stop` signals the whole group, as a terminal's Ctrl-C reaches every process
 * in the foreground (the emulators included).
 */
export async function startCli(dataDir: string, options: { readonly ownGroup?: boolean } = {}): Promise<RunningCli> {
  const port = await freePort();
  const child = spawn(process.execPath, [canonBin, "dev", "--port", String(port), "--data-dir", dataDir], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.ownGroup === true,
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`canon dev did not get ready:\n${output}`)), 90_000);
    const check = () => {
      if (output.includes("Press Ctrl-C to stop")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", check);
    exited.then((code) => reject(new Error(`canon dev exited early (${code}):\n${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    output: () => output,
    async stop(signal = "SIGTERM") {
      try {
        if (options.ownGroup && child.pid !== undefined) process.kill(-child.pid, signal);
        else child.kill(signal);
      } catch (error) {
        // The group is already gone (it has exited): nothing to signal.
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
      return exited;
    },
  };
}

/** Processes whose command line mentions `text` (to prove nothing was left running). */
export function processesMentioning(text: string): string[] {
  const out = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" });
  return out.split("\n").filter((line) => line.includes(text) && !line.includes("ps -eo"));
}

/** Runs a `canon` subcommand against the running system of a data folder, to its end. */
export function runCanon(
  dataDir: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [canonBin, ...args, "--data-dir", dataDir],
      { cwd: repoRoot, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}
