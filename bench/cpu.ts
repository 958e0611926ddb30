/**
 * CPU time by thread and process, for the bench's "where the CPU goes" figures: the bench's own
 * main thread (the API, the bench's clients and its watcher: `process.threadCpuUsage`), every
 * local function's worker thread (its handler and its event source mapping's polling, written by
 * bench/lambda-time.ts beside its Lambda time), and each emulator process (`/proc/<pid>/stat`).
 * CPU time does not depend on how loaded the machine is, as wall times do: CPU per command,
 * against the cores there are, bounds the commands per second this machine can carry.
 */
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { LambdaTimes } from "./lambda-time.ts";

/** CPU ms so far: the bench's main thread, each function (all its threads) and each emulator. */
export interface CpuSnapshot {
  readonly mainMs: number;
  readonly functionsMs: ReadonlyMap<string, number>;
  readonly emulatorsMs: ReadonlyMap<string, number>;
}

/** Linux's clock ticks per second for /proc times (USER_HZ: 100 on every mainstream kernel). */
const ticksPerSecond = 100;

/** CPU ms of each emulator process (shared/local-cloud/emulator-host.ts <name>), by name. */
export function emulatorCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc").filter((entry) => /^\d+$/.test(entry));
  } catch {
    return out; // not Linux: no emulator figures
  }
  for (const pid of pids) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const host = args.findIndex((arg) => arg.endsWith("emulator-host.ts"));
      if (host < 0) continue;
      const name = args[host + 1] ?? "emulator";
      // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
      out.set(name, (out.get(name) ?? 0) + ms);
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Takes a snapshot, the functions' from their Lambda-time files (read by the caller). */
export function cpuSnapshot(functionTimes: ReadonlyMap<string, LambdaTimes>): CpuSnapshot {
  const main = process.threadCpuUsage();
  return {
    mainMs: (main.user + main.system) / 1000,
    functionsMs: new Map([...functionTimes].map(([who, t]) => [who, t.cpuMs ?? 0])),
    emulatorsMs: emulatorCpuMs(),
  };
}

/** CPU ms per command between two snapshots, by part, and what the machine's cores bound. */
export interface CpuPerCommand {
  /** The bench's main thread: the API (a Lambda function on AWS), the bench's clients and watcher. */
  readonly benchMainMs: number;
  readonly functionsMs: number;
  readonly emulatorsMs: number;
  readonly totalMs: number;
  /** The most commands/s the cores could carry at this CPU per command (cores × 1000 ÷ total). */
  readonly ceilingPerSecond: number;
  readonly cores: number;
  /** The largest shares, e.g. { "emulator dynamodb": 4.1, "accounts-command-handler": 3.2 }. */
  readonly byPartMs: Record<string, number>;
}

export function cpuPerCommand(after: CpuSnapshot, before: CpuSnapshot, commands: number): CpuPerCommand | undefined {
  if (commands <= 0) return undefined;
  const per = (ms: number) => Math.round((ms / commands) * 100) / 100;
  const diff = (a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>) =>
    new Map([...a].map(([k, v]) => [k, Math.max(0, v - (b.get(k) ?? 0))]));
  const functions = diff(after.functionsMs, before.functionsMs);
  const emulators = diff(after.emulatorsMs, before.emulatorsMs);
  const sum = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((s, v) => s + v, 0);
  const main = Math.max(0, after.mainMs - before.mainMs);
  const total = main + sum(functions) + sum(emulators);
  const cores = availableParallelism();
  const parts: [string, number][] = [
    ["bench main thread (API, clients, watcher)", main],
    ...[...functions].map(([k, v]): [string, number] => [k, v]),
    ...[...emulators].map(([k, v]): [string, number] => [`emulator ${k}`, v]),
  ];
  return {
    benchMainMs: per(main),
    functionsMs: per(sum(functions)),
    emulatorsMs: per(sum(emulators)),
    totalMs: per(total),
    ceilingPerSecond: total > 0 ? Math.round((cores * 1000 * commands * 10) / total) / 10 : 0,
    cores,
    byPartMs: Object.fromEntries(
      parts
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, per(v)]),
    ),
  };
}

/** CPU ms per second between two snapshots (the same figures, per second of wall time instead of per command). */
export function cpuPerSecond(after: CpuSnapshot, before: CpuSnapshot, elapsedMs: number): CpuPerCommand | undefined {
  return cpuPerCommand(after, before, elapsedMs / 1000);
}
