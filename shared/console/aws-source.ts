/**
 * The console's data layer for a deployed app (`canon console --aws`), read with the
 * operator's credentials (the least-privilege policy: infra/console-access.ts):
 *
 * - buses: the console's own read-only reader of each stream, started a few minutes back
 *   (`AT_TIMESTAMP`), for tips, rates and the live tail; the relay's and the archiver's lag
 *   from CloudWatch's `IteratorAge` (an age: CloudWatch has no record count);
 * - archive: the same manifests in the archive bucket as locally;
 * - projections and functions: each consumer's event source mapping (enabled = live,
 *   disabled = detached or paused), its queue's depth (`GetQueueAttributes`), its dead-letter
 *   queue, its table's `ItemCount` (`DescribeTable`), parks in its table;
 * - warm-ups: executions of the projection's warm-up state machine, started from the console
 *   with `StartExecution`; a blue/green rebuild is local only (refused here, with the reason);
 * - charts: `GetMetricData` over the last ten minutes at a one-minute period;
 * - dead letters, redrive, recent commands: the same functions as locally.
 *
 * Every part fails alone: a denied or throttled call becomes a warning in the overview, and
 * the rest still answers.
 */
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { type EventSourceMappingConfiguration, paginateListEventSourceMappings } from "@aws-sdk/client-lambda";
import type { ShardManifest } from "../archive/layout.ts";
import { readManifests } from "../archive/reader.ts";
import { dynamoClient, lambdaClient } from "../aws/clients.ts";
import { type AppPlan, ids, type PlannedFunction } from "../plan.ts";
import { type DeadLetterReport, deadLetterReport } from "../runner/dead-letters.ts";
import { describeEndpoints, type LocalEndpoints } from "../runner/endpoints.ts";
import type { AppDefinition } from "../topology.ts";
import { type DeployedApp, discoverDeployedApp } from "./aws-discovery.ts";
import {
  consoleMetricQueries,
  latestIteratorAge,
  type MetricLayout,
  type MetricPoints,
  readMetrics,
  samplesFromMetrics,
} from "./aws-metrics.ts";
import { readWarmUps, startWarmUp } from "./aws-warm-ups.ts";
import { type BusWatch, watchBuses } from "./bus-watch.ts";
import { cachedRead } from "./cached-read.ts";
import { queueDepth, recentCommands } from "./local-reads.ts";
import {
  type ArchiveView,
  type BusView,
  ConsoleRequestError,
  type ConsoleSource,
  type FunctionStatus,
  type FunctionView,
  type Overview,
  type ProjectionView,
  type QueueDepth,
  type ReplayJob,
  type Sample,
} from "./source.ts";
import { systemTelemetry, type TelemetryReads } from "./telemetry-reads.ts";
import {
  archiveView,
  declaredProjections,
  describeFunction,
  moveForConsole,
  outcomeTables,
  recentMatching,
  redriveForConsole,
  requireDeclared,
} from "./views.ts";

export interface AwsSourceOptions {
  readonly app: AppDefinition;
  readonly plan: AppPlan;
  readonly region: string;
  /** How often queue depths, mappings and warm-ups are read. @default 10000 */
  readonly sampleEveryMs?: number;
  /** How often CloudWatch is asked for the charts (its period is a minute). @default 60000 */
  readonly metricsEveryMs?: number;
  /** How far back the live tail starts reading. @default 600000 (10 minutes) */
  readonly tailFromMs?: number;
  /** The tail reader's pause per shard when it is caught up (each read uses the shard's 5 reads/s). @default 1000 */
  readonly pollMs?: number;
  /** Journeys and hop latencies (tests give a stand-in). @default the system's own telemetry */
  readonly telemetry?: TelemetryReads;
}

interface Snapshot {
  readonly deployed: DeployedApp;
  readonly queues: readonly QueueDepth[];
  readonly manifests: ReadonlyMap<string, { bucket: string; manifests: readonly ShardManifest[] }>;
  /** Planned function id → its event source mapping (kinesis and sqs consumers only). */
  readonly mappings: ReadonlyMap<string, EventSourceMappingConfiguration>;
  readonly warmUps: readonly ReplayJob[];
  readonly warnings: readonly string[];
}

const chartWindowMs = 10 * 60_000;
const periodSeconds = 60;
/** Scanned per table for the recent commands: a deployed table can be large. */
const commandScanCap = 1_000;

/** A call's failure as one short warning line. */
const warning = (what: string, error: unknown) =>
  `${what}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;

/** What a consumer's event source mapping says of it. */
export function statusFromMapping(
  fn: Pick<PlannedFunction, "source" | "startsDetached">,
  deployed: boolean,
  mapping: Pick<EventSourceMappingConfiguration, "State"> | undefined,
): FunctionStatus {
  if (fn.source.kind === "http") return "served by the API";
  if (fn.source.kind === "job") return "job";
  if (!deployed || mapping === undefined) return "stopped";
  switch (mapping.State) {
    case "Enabled":
      return "running";
    case "Creating":
    case "Enabling":
    case "Updating":
      return "attaching";
    case "Disabled":
    case "Disabling":
      return fn.startsDetached ? "detached" : "paused";
    default:
      return "stopped";
  }
}

/** The console's data layer over a deployed app; its readers run until `stop()`. */
/** The AWS source, and when its first look at the app and at CloudWatch is done (a one-shot `canon status --aws`). */
export interface AwsConsoleSource extends ConsoleSource {
  ready(): Promise<void>;
}

export function awsConsoleSource(options: AwsSourceOptions): AwsConsoleSource {
  const { plan, app } = options;
  const startedAt = new Date().toISOString();
  // The deployed tables have the plan's names; hop latencies are an Athena query, reused for a minute.
  const telemetry =
    options.telemetry ??
    systemTelemetry({
      app: options.app,
      plan: options.plan,
      tableNames: new Map(options.plan.tables.map((t) => [t.id, t.name])),
      target: "athena",
      latencyCacheMs: 60_000,
      traceOf: (commandId) => watch.traceOf(commandId),
    });
  const every = options.sampleEveryMs ?? 10_000;
  const metricsEvery = options.metricsEveryMs ?? 60_000;

  // Discovery: again every minute while something is missing (a deploy under way), else every ten.
  let lastDiscovery: DeployedApp | undefined;
  const discovery = cachedRead(10 * 60_000, async () => {
    lastDiscovery = await discoverDeployedApp(plan, options.region);
    return lastDiscovery;
  });
  const deployed = () => discovery(lastDiscovery && lastDiscovery.missing.length > 0 ? 60_000 : undefined);

  const streams = new Map(plan.streams.map((s) => [s.bus, s.name]));
  const telemetryBuses = new Set(plan.telemetry.map((store) => store.bus));
  const watch: BusWatch = watchBuses(streams, {
    startAt: new Date(Date.now() - (options.tailFromMs ?? 600_000)),
    pollMs: options.pollMs ?? 1_000,
    telemetry: telemetryBuses,
  });

  const endpointsOf = (d: DeployedApp): LocalEndpoints => ({
    ...describeEndpoints({ plan, resources: d.resources, api: "", embedded: false, env: {} }),
    deployed: true,
  });
  const projectionQueues = (d: DeployedApp) =>
    endpointsOf(d).projections.map((p) => {
      const fn = plan.functions.find((f) => f.id === p.functionId);
      return { name: p.name, queueId: fn?.source.kind === "sqs" ? fn.source.queueId : p.functionId };
    });

  /**
   * Every consumer's event source mapping: one paginated listing of the region's mappings (not
   * a call per function: Lambda's control plane has a low request rate), kept for the app's
   * functions. A function has one mapping, for its one source.
   */
  const readMappings = async (d: DeployedApp) => {
    const byArn = new Map([...d.functions].map(([id, fn]) => [fn.arn, id]));
    const mappings = new Map<string, EventSourceMappingConfiguration>();
    for await (const page of paginateListEventSourceMappings({ client: lambdaClient() }, { MaxItems: 100 })) {
      for (const mapping of page.EventSourceMappings ?? []) {
        // A qualified ARN (`…:function:name:alias`) names the same function.
        const arn = mapping.FunctionArn?.split(":").slice(0, 7).join(":");
        const id = arn === undefined ? undefined : byArn.get(arn);
        if (id !== undefined && !mappings.has(id)) mappings.set(id, mapping);
      }
    }
    return mappings;
  };

  const archivedRecords = (manifests: Snapshot["manifests"], bus: string) =>
    (manifests.get(bus)?.manifests ?? []).reduce((sum, m) => sum + m.records, 0);

  const snapshot = async (): Promise<Snapshot> => {
    const d = await deployed();
    const warnings = d.missing.length > 0 ? [`not deployed (yet): ${d.missing.join(", ")}`] : [];
    const settle = async <T>(what: string, read: Promise<T>, fallback: T): Promise<T> => {
      try {
        return await read;
      } catch (error) {
        warnings.push(warning(what, error));
        return fallback;
      }
    };
    const [queues, manifestList, mappings] = await Promise.all([
      settle(
        "queue depths",
        Promise.all(
          plan.queues.flatMap((queue) => {
            const url = d.resources.queueUrls.get(queue.id);
            const dlq = d.resources.deadLetterQueueUrls.get(queue.id);
            if (url === undefined || dlq === undefined) return [];
            return [
              Promise.all([queueDepth(url), queueDepth(dlq)]).then(
                ([main, dead]): QueueDepth => ({ id: queue.id, ...main, deadLetters: dead.visible + dead.inFlight }),
              ),
            ];
          }),
        ),
        [] as QueueDepth[],
      ),
      Promise.all(
        [...d.resources.archiveBuckets].map(async ([bus, bucket]) => ({
          bus,
          bucket,
          manifests: await settle(`archive manifests of ${bus}`, readManifests(bucket, bus), [] as ShardManifest[]),
        })),
      ),
      settle("event source mappings", readMappings(d), new Map<string, EventSourceMappingConfiguration>()),
    ]);
    const manifests = new Map(manifestList.map((m) => [m.bus, { bucket: m.bucket, manifests: m.manifests }]));
    const warmUps = (
      await Promise.all(
        [...d.warmUps].map(([functionId, machine]) => {
          const projection = endpointsOf(d).projections.find((p) => p.functionId === functionId);
          const owner = plan.functions.find((f) => f.id === functionId)?.owner;
          const service = owner?.kind === "service" ? owner.name : undefined;
          const bus = app.services.find((s) => s.name === service)?.bus;
          const archived = bus === undefined ? 0 : archivedRecords(manifests, bus);
          return settle(
            `warm-ups of ${functionId}`,
            readWarmUps(machine, projection?.name ?? functionId, archived),
            [] as ReplayJob[],
          );
        }),
      )
    ).flat();
    return { deployed: d, queues, manifests, mappings, warmUps, warnings };
  };

  // CloudWatch: the charts and the readers' iterator ages.
  let metrics: { layout: MetricLayout; points: MetricPoints; samples: Sample[] } | undefined;
  let metricsWarning: string | undefined;
  const readCharts = async () => {
    const d = await deployed();
    const layout = consoleMetricQueries(plan, d, projectionQueues(d));
    const end = new Date();
    const points = await readMetrics(layout.queries, {
      start: new Date(end.getTime() - chartWindowMs),
      end,
      periodSeconds,
    });
    metrics = { layout, points, samples: samplesFromMetrics(layout, points, periodSeconds) };
  };

  // Two loops: the sampler (every `every` ms) and CloudWatch (every `metricsEvery` ms).
  let latest: Snapshot | undefined;
  let stopping = false;
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<Promise<void>>();
  /** Runs `step` now and every `ms` after it ends; resolves when its first run has ended. */
  const loop = (ms: number, step: () => Promise<void>): Promise<void> => {
    let first: Promise<void> | undefined;
    const tick = () => {
      const run = step().finally(() => {
        inFlight.delete(run);
        if (stopping) return;
        const timer = setTimeout(() => {
          timers.delete(timer);
          tick();
        }, ms);
        timers.add(timer);
      });
      inFlight.add(run);
      first ??= run;
    };
    tick();
    return first ?? Promise.resolve();
  };
  let firstSnapshot: Promise<Snapshot> | undefined;
  const sampled = loop(every, async () => {
    const next = snapshot();
    firstSnapshot ??= next;
    try {
      latest = await next;
    } catch (error) {
      if (!stopping) console.error("canon console: reading the deployed app failed:", (error as Error).message);
    }
  });
  const charted = loop(metricsEvery, async () => {
    try {
      await readCharts();
      metricsWarning = undefined;
    } catch (error) {
      metricsWarning = warning("CloudWatch metrics", error);
      if (!stopping) console.error(`canon console: ${metricsWarning}`);
    }
  });

  const current = async (): Promise<Snapshot> => latest ?? (await (firstSnapshot ?? snapshot()));

  /** A reader's newest iterator age from CloudWatch (0 without a point in the last three periods: idle). */
  const readerAge = (bus: string, reader: "relay" | "archiver") =>
    metrics === undefined
      ? 0
      : latestIteratorAge(metrics.layout, metrics.points, bus, reader, Date.now(), 3 * periodSeconds * 1000);

  const buses = (): BusView[] =>
    [...streams].map(([bus, stream]) => {
      const now = Date.now();
      const [relayAge, archiverAge] = [readerAge(bus, "relay"), readerAge(bus, "archiver")];
      return {
        bus,
        kind: telemetryBuses.has(bus) ? "telemetry" : "events",
        stream,
        caughtUp: watch.caughtUp(bus),
        recordsPerSecond: rates.rate(bus, now),
        shards: watch.shards(bus).map((shard) => ({
          shardId: shard.shardId,
          closed: shard.closed,
          ...(shard.tip === undefined ? {} : { tip: shard.tip }),
          records: shard.records,
          relay: { ...watch.lagByAge(bus, shard.shardId, relayAge), fromAge: true },
          archiver: { ...watch.lagByAge(bus, shard.shardId, archiverAge), fromAge: true },
        })),
      };
    });

  // Records per second from the tail reader's count, between two looks at least 5 s apart.
  const rates = (() => {
    const seen = new Map<string, { records: number; at: number; rate: number }>();
    return {
      rate(bus: string, now: number): number {
        const records = watch.records(bus);
        const before = seen.get(bus);
        if (before === undefined) {
          seen.set(bus, { records, at: now, rate: 0 });
          return 0;
        }
        if (now - before.at < 5_000) return before.rate;
        const rate = Math.max(0, records - before.records) / ((now - before.at) / 1000);
        seen.set(bus, { records, at: now, rate });
        return rate;
      },
    };
  })();

  const archive = (snap: Snapshot): ArchiveView[] =>
    [...snap.manifests].map(([bus, { bucket, manifests }]) => {
      const archiverAge = readerAge(bus, "archiver");
      return archiveView(
        bus,
        bucket,
        manifests,
        watch.shards(bus).map((s) => s.shardId),
        (shardId) => ({ ...watch.lagByAge(bus, shardId, archiverAge), fromAge: true }),
      );
    });

  const functions = async (): Promise<FunctionView[]> => {
    const snap = await current();
    return plan.functions.map((fn) => ({
      ...describeFunction(fn),
      status: statusFromMapping(fn, snap.deployed.functions.has(fn.id), snap.mappings.get(fn.id)),
    }));
  };

  const deadLetters = cachedRead(15_000, async () => deadLetterReport(endpointsOf(await deployed())));
  const itemCounts = cachedRead(60_000, async () => {
    const counts = new Map<string, number>();
    await Promise.all(
      plan.tables.map(async (table) => {
        const described = await dynamoClient().send(new DescribeTableCommand({ TableName: table.name }));
        counts.set(table.name, described.Table?.ItemCount ?? 0);
      }),
    );
    return counts;
  });

  // Warnings from reads outside the sampler (dead letters), shown once with the next overview.
  const lateWarnings: string[] = [];
  const declared = declaredProjections(app);

  const projections = async (): Promise<ProjectionView[]> => {
    const snap = await current();
    const [report, counts] = await Promise.all([
      deadLetters().catch(() => ({ parked: [], deadLetterQueues: [] }) as DeadLetterReport),
      itemCounts().catch(() => new Map<string, number>()),
    ]);
    const depthOf = new Map(snap.queues.map((q) => [q.id, q]));
    return endpointsOf(snap.deployed).projections.map((p): ProjectionView => {
      const fn = plan.functions.find((f) => f.id === p.functionId) as PlannedFunction;
      const queueId = fn.source.kind === "sqs" ? fn.source.queueId : fn.id;
      const depth = depthOf.get(queueId);
      const status = statusFromMapping(fn, snap.deployed.functions.has(fn.id), snap.mappings.get(fn.id));
      const job = snap.warmUps.find((j) => j.projection === p.name && j.state === "running");
      const [view, detail] = job
        ? (["warming up", job.messages.at(-1) ?? "warm-up started"] as const)
        : status === "running"
          ? (["live", "its queue mapping is enabled"] as const)
          : status === "attaching"
            ? (["warming up", `its queue mapping is ${snap.mappings.get(fn.id)?.State?.toLowerCase()}`] as const)
            : status === "detached"
              ? (["detached", "buffering in its queue until warmed up"] as const)
              : status === "paused"
                ? (["paused", "its queue mapping is disabled"] as const)
                : ([
                    "stopped",
                    snap.deployed.functions.has(fn.id) ? "no queue mapping found" : "not deployed",
                  ] as const);
      const count = counts.get(p.table);
      return {
        name: p.name,
        service: fn.owner.kind === "service" ? fn.owner.name : "",
        functionId: p.functionId,
        status: view,
        detail,
        table: p.table,
        ...(count === undefined ? {} : { items: { count, atLeast: false } }),
        queue: { visible: depth?.visible ?? 0, inFlight: depth?.inFlight ?? 0 },
        deadLetters: depth?.deadLetters ?? 0,
        parked: report.parked.filter((park) => park.projection === p.name).length,
        canWarmUp:
          declared.has(p.name) && status === "detached" && job === undefined && snap.deployed.warmUps.has(fn.id),
        canRebuild: false,
      };
    });
  };

  const commands = cachedRead(10_000, async () => {
    const d = await deployed();
    return recentCommands(
      d.resources.tableNames.get(ids.apiCommandsTable()),
      outcomeTables(app, d.resources.tableNames),
      200,
      commandScanCap,
    );
  });

  const projectionFunction = (d: DeployedApp, projection: string) => {
    const endpoint = endpointsOf(d).projections.find((p) => p.name === projection);
    return endpoint && plan.functions.find((f) => f.id === endpoint.functionId);
  };

  return {
    ready: async () => {
      await Promise.all([sampled, charted]);
    },
    async overview(): Promise<Overview> {
      const snap = await current();
      const [projectionViews, functionViews, report] = await Promise.all([
        projections(),
        functions(),
        deadLetters().catch((error: unknown) => {
          lateWarnings.push(warning("dead letters", error));
          return { parked: [], deadLetterQueues: [] } as DeadLetterReport;
        }),
      ]);
      const warnings = [...snap.warnings, ...(metricsWarning ? [metricsWarning] : []), ...lateWarnings.splice(0)];
      return {
        generatedAt: new Date().toISOString(),
        target: { kind: "aws", region: options.region },
        prefix: plan.prefix,
        startedAt,
        buses: buses(),
        archive: archive(snap),
        projections: projectionViews,
        functions: functionViews,
        queues: snap.queues,
        deadLetters: report,
        replays: snap.warmUps,
        ...(warnings.length > 0 ? { warnings } : {}),
      };
    },
    buses: async () => buses(),
    archive: async () => archive(await current()),
    projections,
    functions,
    deadLetters: () => deadLetters(),
    commands: async (limit) => (await commands()).slice(0, limit),
    trace: (commandId) => telemetry.trace(commandId),
    hopLatencies: (minutes) => telemetry.hopLatencies(minutes),
    series: () => metrics?.samples ?? [],
    recentEvents: (filter, limit) => recentMatching(watch, filter, limit),
    subscribe: (listener) => watch.subscribe(listener),
    async redrive(projection, aggregate, { skip }) {
      try {
        return await redriveForConsole(endpointsOf(await deployed()), projection, aggregate, {
          skip,
          timeoutMs: 30_000,
        });
      } finally {
        deadLetters.invalidate();
      }
    },
    async moveDeadLetters(queueId) {
      try {
        return await moveForConsole(endpointsOf(await deployed()), queueId);
      } finally {
        deadLetters.invalidate();
      }
    },
    async startReplay(projection, action) {
      requireDeclared(declared, projection);
      if (action === "rebuild") {
        throw new ConsoleRequestError(
          `${projection}: a one-step blue/green rebuild runs on the local cloud only; on AWS, declare ` +
            "generations: { serving, next } for it, deploy, warm the next generation up here, then deploy it as serving " +
            "(docs/add-a-projection.md)",
          409,
        );
      }
      const snap = await current();
      const fn = projectionFunction(snap.deployed, projection);
      if (fn?.startsDetached !== true) {
        throw new ConsoleRequestError(`${projection} is live from the start; only a warmUp projection warms up`, 409);
      }
      const machine = snap.deployed.warmUps.get(fn.id);
      if (machine === undefined) {
        throw new ConsoleRequestError(`${projection}: its warm-up state machine is not deployed`, 409);
      }
      // Read the mapping now, not from the last sample: a warm-up of an attached consumer is refused.
      const mapping = (await readMappings(snap.deployed)).get(fn.id);
      const status = statusFromMapping(fn, snap.deployed.functions.has(fn.id), mapping);
      if (status !== "detached") {
        throw new ConsoleRequestError(`${projection} is ${status}: only a detached projection warms up`, 409);
      }
      const running = (await readWarmUps(machine, projection, 0)).find((j) => j.state === "running");
      if (running !== undefined) {
        throw new ConsoleRequestError(`${projection}: a warm-up is already running (${running.id})`, 409);
      }
      const started = await startWarmUp(machine);
      return {
        id: started.name,
        projection,
        action: "warm-up",
        state: "running",
        startedAt: started.startDate.toISOString(),
        messages: [`${started.startDate.toISOString().slice(11, 19)} started ${started.executionArn}`],
      };
    },
    replays: () => latest?.warmUps ?? [],
    async stop() {
      stopping = true;
      for (const timer of timers) clearTimeout(timer);
      await Promise.all([...inFlight].map((run) => run.catch(() => undefined)));
      await watch.stop();
    },
  };
}
