/**
 * What is in each Lambda bundle, and what its cold start costs.
 *
 * Every planned handler is bundled with the settings CDK deploys it with (infra/bundling.ts),
 * with esbuild's metafile: per function, its largest inputs (by package, or by folder for our
 * own code) and the chain of imports that pulled each in from the handler.
 *
 * Init is the median time to `import()` the bundle (built with its source map, run with the
 * deployed NODE_OPTIONS, `--enable-source-maps`) in a fresh Node process (wall, and the CPU
 * time it took, which a loaded shared machine inflates less), measured in the same rounds beside
 * two baselines: an empty module, and a minimal handler that imports one SDK
 * client and makes it (what the smallest useful Lambda function loads). The external
 * `@aws-sdk/*` packages load from node_modules, as the runtime loads its own. AWS's "Init
 * Duration" adds the runtime's own start (its bootstrap, tens of ms) and reads from the
 * function's disk rather than a warm page cache; both baselines pay the same, so the ratio is
 * what carries over.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { build, type Metafile } from "esbuild";
import {
  bundleDefines,
  deployedNodeOptions,
  esmRequireBanner,
  externalModules,
  mainFields,
  nodeTarget,
} from "../infra/bundling.ts";
import { bundleEntry } from "../shared/entries/source.ts";
import type { AppPlan, FunctionRole, PlannedFunction } from "../shared/plan.ts";

/** The issue's targets (issue 14): every bundle, and the stream and fan-out consumers'. */
export const bundleTargets = {
  kib: 150,
  /** Projections, the relay and the archiver carry neither the command validator nor the HTTP framework. */
  consumerKib: 100,
  consumerRoles: ["projection", "relay", "archiver"] as readonly FunctionRole[],
  /**
   * Over the issue's 150 KiB, on purpose: the API's rpc function (Connect and gRPC-Web, issue
   * 16) carries connect-es (~37 KiB) and protobuf-es's binary codec beside the command
   * validation every command path has (~100 KiB). It is a function of its own, so nothing else
   * carries them, and only Connect and gRPC-Web callers wake it. 180 rather than 175 since issue
   * 18: like the JSON API, it seals a command's personal data before queueing it (shared/privacy
   * 4.6 KiB and the marks' descriptor; 176.6 KiB measured on 2026-12-02). 210 since issue 17: it
   * logs through Powertools Logger like every function (20.4 KiB) and carries the trace context and
   * telemetry emitter (~7 KiB): 204.1 KiB measured on 2026-12-02.
   */
  rpcKib: 210,
  rpcFunction: "api-rpc",
  /**
   * Over the issue's 150 KiB since issue 17, on purpose: the JSON API logs through Powertools
   * Logger like every function (one logger with the same keys everywhere: 20.4 KiB) and carries the
   * trace context, the telemetry emitter and the journey reader (~11 KiB): 178 KiB measured on
   * 2026-12-02; without the Logger it would be about 161.
   */
  apiKib: 185,
  apiFunction: "api",
  /**
   * Over the issue's 150 KiB, on purpose: a command handler seals personal data before its commits
   * leave it, and opens what the API sealed in its commands (issue 18, docs/privacy.md) — the
   * subject key store, KMS key wrapping, the key cache and AES-256-GCM: 7.4 KiB of the accounts
   * handler's 159.3 KiB measured on 2026-12-02 (shared/privacy 6.4 KiB, the marks' descriptor,
   * the handler's two steps). Without them it is 151.9 KiB, over 150 since the declared-parts
   * entries (2bfef3e). 170 since issue 17: the trace context and the telemetry emitter (queued,
   * decided and appended hops, the outcome record): 6.4 KiB, 166.4 KiB measured on 2026-12-02.
   */
  commandHandlerKib: 170,
  /** Init at most this many times the minimal SDK handler's. */
  initRatio: 2,
} as const;

/** A bundle's size limit (KiB) by the function's role. */
export const kibTargetFor = (role: FunctionRole, id?: string) =>
  id === bundleTargets.rpcFunction
    ? bundleTargets.rpcKib
    : id === bundleTargets.apiFunction
      ? bundleTargets.apiKib
      : bundleTargets.consumerRoles.includes(role)
        ? bundleTargets.consumerKib
        : role === "command-handler"
          ? bundleTargets.commandHandlerKib
          : bundleTargets.kib;

/** One input of a bundle, grouped: a package (`zod`, `@bufbuild/protobuf`) or a folder of ours. */
export interface BundleInput {
  readonly name: string;
  readonly kib: number;
  /** The imports from the handler to the group's first file: why it is in the bundle. */
  readonly via: readonly string[];
}

export interface BundleFigure {
  readonly function: string;
  readonly role: FunctionRole;
  readonly handler: string;
  readonly bytes: number;
  readonly initMs: number | undefined;
  /** The CPU time of the same imports (median). */
  readonly initCpuMs: number | undefined;
  /** The largest inputs, largest first. */
  readonly largest: readonly BundleInput[];
  readonly error?: string;
}

export interface BundleMeasurement {
  readonly bundles: BundleFigure[];
  /** Init of a module that exports an empty handler. */
  readonly emptyInitMs: number;
  /** Init of a handler that imports one SDK client (SQS) and makes it. */
  readonly minimalSdkInitMs: number;
  /** Its CPU time. */
  readonly minimalSdkInitCpuMs: number;
}

/** The group an input path belongs to: its package under node_modules, else its folder. */
function groupOf(path: string): string {
  const inPackage = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (inPackage?.[1] !== undefined) return inPackage[1];
  const slash = path.lastIndexOf("/");
  return slash < 0 ? path : path.slice(0, slash);
}

/** The largest `count` input groups of a bundle, each with the import chain that first reaches it. */
export function largestInputs(metafile: Metafile, entry: string, count: number): BundleInput[] {
  const output = Object.entries(metafile.outputs).find(([path]) => !path.endsWith(".map"))?.[1];
  if (output === undefined) return [];
  const sizes = new Map<string, number>();
  for (const [path, input] of Object.entries(output.inputs))
    sizes.set(groupOf(path), (sizes.get(groupOf(path)) ?? 0) + input.bytesInOutput);
  // Breadth first from the entry: the shortest chain of imports to each file.
  const parent = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const imported of metafile.inputs[next]?.imports ?? []) {
      if (imported.external || parent.has(imported.path)) continue;
      parent.set(imported.path, next);
      queue.push(imported.path);
    }
  }
  const chainTo = (path: string): string[] => {
    const chain: string[] = [];
    for (let at: string | undefined = path; at !== undefined; at = parent.get(at)) chain.unshift(at);
    return chain;
  };
  const firstReached = new Map<string, string>();
  for (const path of parent.keys()) if (!firstReached.has(groupOf(path))) firstReached.set(groupOf(path), path);
  return [...sizes]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, bytes]) => {
      const first = firstReached.get(name);
      // The chain's own files, then the group's first file: where the dependency comes in.
      const chain = first === undefined ? [] : chainTo(first);
      return { name, kib: Math.round((bytes / 1024) * 10) / 10, via: chain.map(shortPath) };
    });
}

const shortPath = (path: string) => path.replace(/^.*node_modules\//, "");

/**
 * The distinct Lambda entries of a plan, one function each: a module, or a declared part's
 * generated entry (shared/entries/source.ts), as CDK bundles it; `entry` is its path from the root.
 */
export function plannedEntries(plan: AppPlan, repoRoot: string): { fn: PlannedFunction; entry: string }[] {
  const seen = new Map<string, PlannedFunction>();
  for (const fn of plan.functions) {
    const key = fn.entry === undefined ? fn.handler : JSON.stringify([fn.handler, fn.entry.kind, fn.entry.name]);
    if (!seen.has(key)) seen.set(key, fn);
  }
  return [...seen.values()].map((fn) => ({ fn, entry: relative(repoRoot, bundleEntry(fn, repoRoot)) }));
}

/** Bundles one handler with the settings CDK deploys it with, its source map beside it, and a metafile. */
export async function buildBundle(repoRoot: string, handler: string, outfile: string): Promise<{ metafile: Metafile }> {
  return build({
    entryPoints: [resolve(repoRoot, handler)],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: nodeTarget,
    mainFields,
    external: externalModules,
    minify: true,
    banner: { js: esmRequireBanner },
    define: bundleDefines,
    sourcemap: true, // as deployed: the map beside the bundle (not in its size), read with --enable-source-maps
    metafile: true,
    absWorkingDir: repoRoot,
    logLevel: "silent",
  });
}

/**
 * Bundles each planned handler as CDK does (infra/bundling.ts) with a metafile; sizes, largest
 * inputs and init times, beside an empty module's and a minimal SDK handler's init.
 */
export async function measureBundles(plan: AppPlan, repoRoot: string, runs: number): Promise<BundleMeasurement> {
  const outdir = join(repoRoot, "node_modules", ".cache", "canon-bench");
  mkdirSync(outdir, { recursive: true });
  const empty = join(outdir, "empty.mjs");
  writeFileSync(empty, "export const handler = async () => {};\n");
  const minimal = join(outdir, "minimal-sdk.mjs");
  writeFileSync(
    minimal,
    'import { SQSClient } from "@aws-sdk/client-sqs";\nconst sqs = new SQSClient({});\nexport const handler = async () => sqs.config.region;\n',
  );
  const built: {
    id: string;
    role: FunctionRole;
    handler: string;
    outfile: string;
    bytes: number;
    largest: BundleInput[];
  }[] = [];
  for (const { fn, entry: handler } of plannedEntries(plan, repoRoot)) {
    const { id, role } = fn;
    const outfile = join(outdir, `${id}.mjs`);
    const result = await buildBundle(repoRoot, handler, outfile);
    const entry = relative(repoRoot, join(repoRoot, handler));
    built.push({
      id,
      role,
      handler,
      outfile,
      bytes: statSync(outfile).size,
      largest: largestInputs(result.metafile, entry, 6),
    });
  }
  // Interleaved rounds, so a burst of load on a shared machine falls on every figure alike.
  const times = new Map<string, { wall: number; cpu: number }[]>();
  const files = [empty, minimal, ...built.map((b) => b.outfile)];
  const errors = new Map<string, string>();
  for (let round = 0; round < runs; round++) {
    for (const file of files) {
      if (errors.has(file)) continue;
      try {
        times.set(file, [...(times.get(file) ?? []), initTime(file, repoRoot)]);
      } catch (error) {
        errors.set(file, String(error).slice(0, 200));
      }
    }
  }
  const medianOf = (file: string, of: "wall" | "cpu" = "wall") => median((times.get(file) ?? []).map((t) => t[of]));
  return {
    emptyInitMs: medianOf(empty),
    minimalSdkInitMs: medianOf(minimal),
    minimalSdkInitCpuMs: medianOf(minimal, "cpu"),
    bundles: built.map((b) => ({
      function: b.id,
      role: b.role,
      handler: b.handler,
      bytes: b.bytes,
      initMs: errors.has(b.outfile) ? undefined : medianOf(b.outfile),
      initCpuMs: errors.has(b.outfile) ? undefined : medianOf(b.outfile, "cpu"),
      largest: b.largest,
      ...(errors.has(b.outfile) && { error: errors.get(b.outfile) }),
    })),
  };
}

/**
 * Milliseconds to import a module in a fresh Node 24 process (this process's binary): wall time,
 * and the CPU time (user + system) the import took, which a busy shared machine inflates less.
 */
function initTime(file: string, cwd: string): { wall: number; cpu: number } {
  const script = `const c = process.cpuUsage(); const t = performance.now(); await import(${JSON.stringify(`file://${file}`)}); const u = process.cpuUsage(c); process.stdout.write(JSON.stringify({ wall: performance.now() - t, cpu: (u.user + u.system) / 1000 }));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd,
    env: { PATH: process.env.PATH ?? "", AWS_REGION: "us-east-1", NODE_OPTIONS: deployedNodeOptions },
    encoding: "utf8",
    timeout: 30_000,
  });
  return JSON.parse(out) as { wall: number; cpu: number };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
