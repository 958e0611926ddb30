/**
 * The console's data layer on the local cloud (`canon dev`, or LocalStack with `--external`):
 * the bus watcher for tips and the tail, the runner's checkpoints for the relay's and the
 * archiver's lag, the archive's manifests for its watermarks, SQS queue attributes for
 * projection lag and dead-letter depth, the control table for what is attached, paused or
 * moved, and `canon dlq`'s functions for parks and redrive. A sampler keeps a short time
 * series for the charts.
 */
import { localSinkFunctions } from "../analytics/local-sink.ts";
import { readManifests } from "../archive/reader.ts";
import { isAwsError } from "../aws/errors.ts";
import { attachedFunctions, type ConsumerRequest, consumerTables } from "../local-cloud/control.ts";
import type { ProvisionedResources } from "../local-cloud/provision.ts";
import { type AppPlan, findProjectionGeneration, ids, type PlannedFunction } from "../plan.ts";
import { type DeadLetterReport, deadLetterReport } from "../runner/dead-letters.ts";
import { describeEndpoints, type LocalEndpoints } from "../runner/endpoints.ts";
import type { AppDefinition } from "../topology.ts";
import { type BusWatch, watchBuses } from "./bus-watch.ts";
import { type CachedRead, cachedRead } from "./cached-read.ts";
import { countItems, queueDepth, readCheckpoints, recentCommands } from "./local-reads.ts";
import { type ReplayJobs, replayJobs } from "./replay-jobs.ts";
import {
  type ArchiveView,
  type BusView,
  ConsoleRequestError,
  type ConsoleSource,
  type FunctionStatus,
  type FunctionView,
  type ProjectionView,
  type QueueDepth,
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

export interface LocalSourceOptions {
  readonly app: AppDefinition;
  readonly plan: AppPlan;
  readonly resources: ProvisionedResources;
  /** The functions the runner runs now. */
  readonly runningFunctions: () => readonly string[];
  readonly repoRoot: string;
  /** Whether the emulators are embedded (else external endpoints, e.g. LocalStack). */
  readonly embedded: boolean;
  /** Sampling interval for the charts. @default 2000 */
  readonly sampleEveryMs?: number;
  /** How much history the charts keep. @default 600000 (10 minutes) */
  readonly keepMs?: number;
  /** Journeys and hop latencies (tests give a stand-in). @default the system's own telemetry */
  readonly telemetry?: TelemetryReads;
}

interface Snapshot {
  readonly at: number;
  readonly buses: readonly BusView[];
  readonly archive: readonly ArchiveView[];
  readonly queues: readonly QueueDepth[];
}

/** Items counted per table before the count says "at least". */
const countCap = 100_000;

/** The console's data layer over the local cloud; its sampler and bus reader run until `stop()`. */
export function localConsoleSource(options: LocalSourceOptions): ConsoleSource {
  const { plan, resources } = options;
  const prefix = plan.prefix;
  const startedAt = new Date().toISOString();
  const telemetry =
    options.telemetry ??
    systemTelemetry({
      app: options.app,
      plan,
      tableNames: resources.tableNames,
      target: "local",
      latencyCacheMs: 5_000,
      traceOf: (commandId) => watch.traceOf(commandId),
    });
  const endpoints: LocalEndpoints = describeEndpoints({
    plan,
    resources,
    api: "",
    embedded: options.embedded,
    env: process.env,
  });
  const telemetryBuses = new Set(plan.telemetry.map((store) => store.bus));
  const watch: BusWatch = watchBuses(resources.streamNames, { telemetry: telemetryBuses });
  // Whose checkpoints measure a bus's lag: the relay's and the archiver's, or on the telemetry
  // bus the journey indexer's and the local sink's (what Firehose is on AWS).
  const sinks = new Map(
    localSinkFunctions(plan).flatMap((fn) => (fn.source.kind === "kinesis" ? [[fn.source.bus, fn.id]] : [])),
  );
  const readersOf = (bus: string) =>
    telemetryBuses.has(bus)
      ? { relay: ids.journeyIndexer(bus), archiver: sinks.get(bus) ?? `${bus}-local-sink` }
      : { relay: `${bus}-relay`, archiver: `${bus}-archiver` };
  const jobs: ReplayJobs = replayJobs({
    app: options.app,
    plan,
    resources,
    repoRoot: options.repoRoot,
  });
  const every = options.sampleEveryMs ?? 2_000;
  const samples: Sample[] = [];
  const keep = Math.ceil((options.keepMs ?? 600_000) / every);
  let latest: Snapshot | undefined;
  let lastRecords = new Map<string, { records: number; at: number }>();

  const queues = plan.queues.flatMap((queue) => {
    const url = resources.queueUrls.get(queue.id);
    const dlq = resources.deadLetterQueueUrls.get(queue.id);
    return url && dlq ? [{ id: queue.id, url, dlq }] : [];
  });

  // The queue a function consumes.
  const queueIdOf = (functionId: string): string => {
    const fn = plan.functions.find((f) => f.id === functionId);
    return fn?.source.kind === "sqs" ? fn.source.queueId : functionId;
  };

  const snapshot = async (): Promise<Snapshot> => {
    const at = Date.now();
    const [checkpoints, manifests, depths] = await Promise.all([
      readCheckpoints(`${prefix}-local-runner-checkpoints`).catch(() => new Map<string, string>()),
      Promise.all(
        [...resources.archiveBuckets].map(async ([bus, bucket]) => ({
          bus,
          bucket,
          manifests: await readManifests(bucket, bus),
        })),
      ),
      Promise.all(
        queues.map(async (q): Promise<QueueDepth> => {
          const [main, dead] = await Promise.all([queueDepth(q.url), queueDepth(q.dlq)]);
          return { id: q.id, ...main, deadLetters: dead.visible + dead.inFlight };
        }),
      ),
    ]);
    const buses = [...resources.streamNames].map(([bus, stream]): BusView => {
      const records = watch.records(bus);
      const before = lastRecords.get(bus);
      const seconds = before === undefined ? 0 : (at - before.at) / 1000;
      const rate = before === undefined || seconds <= 0 ? 0 : Math.max(0, records - before.records) / seconds;
      const readers = readersOf(bus);
      return {
        bus,
        kind: telemetryBuses.has(bus) ? "telemetry" : "events",
        stream,
        caughtUp: watch.caughtUp(bus),
        recordsPerSecond: rate,
        shards: watch.shards(bus).map((shard) => ({
          shardId: shard.shardId,
          closed: shard.closed,
          ...(shard.tip === undefined ? {} : { tip: shard.tip }),
          records: shard.records,
          relay: watch.lag(bus, shard.shardId, checkpoints.get(`${readers.relay}#${shard.shardId}`)),
          archiver: watch.lag(bus, shard.shardId, checkpoints.get(`${readers.archiver}#${shard.shardId}`)),
        })),
      };
    });
    lastRecords = new Map(buses.map((b) => [b.bus, { records: watch.records(b.bus), at }]));
    const archive = manifests.map(({ bus, bucket, manifests: list }) =>
      archiveView(
        bus,
        bucket,
        list,
        watch.shards(bus).map((s) => s.shardId),
        (shardId, watermark) => watch.lag(bus, shardId, watermark),
      ),
    );
    return { at, buses, archive, queues: depths };
  };

  const sample = async () => {
    const snap = await snapshot();
    latest = snap;
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const depthOf = new Map(snap.queues.map((q) => [q.id, q]));
    samples.push({
      t: snap.at,
      buses: Object.fromEntries(
        snap.buses.map((b) => [
          b.bus,
          {
            recordsPerSecond: b.recordsPerSecond,
            relayLag: sum(b.shards.map((s) => s.relay.records)),
            archiverLag: sum(b.shards.map((s) => s.archiver.records)),
            archiveLag: sum(snap.archive.find((a) => a.bus === b.bus)?.shards.map((s) => s.lag.records) ?? []),
          },
        ]),
      ),
      projections: Object.fromEntries(
        endpoints.projections.map((p) => {
          const depth = depthOf.get(queueIdOf(p.functionId));
          return [p.name, depth === undefined ? 0 : depth.visible + depth.inFlight];
        }),
      ),
      deadLetters: sum(snap.queues.map((q) => q.deadLetters)),
    });
    if (samples.length > keep) samples.splice(0, samples.length - keep);
  };

  // The sampler: one sample at a time, every `every` ms.
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  const tick = () => {
    inFlight = sample()
      .catch((error: unknown) => {
        if (!stopping) console.error("canon console: sampling failed:", (error as Error).message);
      })
      .finally(() => {
        inFlight = undefined;
        if (!stopping) timer = setTimeout(tick, every);
      });
  };
  tick();

  const current = async (): Promise<Snapshot> => {
    if (latest !== undefined) return latest;
    await inFlight;
    return latest ?? snapshot();
  };

  const control = async (): Promise<{ attached: Set<string>; tables: Map<string, ConsumerRequest> }> => {
    try {
      const [attached, tables] = await Promise.all([attachedFunctions(prefix), consumerTables(prefix)]);
      return { attached: new Set(attached), tables };
    } catch (error) {
      if (isAwsError(error, "ResourceNotFoundException")) {
        return { attached: new Set(), tables: new Map() };
      }
      throw error;
    }
  };

  const statusOf = (
    fn: PlannedFunction,
    running: ReadonlySet<string>,
    attached: ReadonlySet<string>,
    tables: ReadonlyMap<string, ConsumerRequest>,
  ): FunctionStatus => {
    if (fn.source.kind === "http") return "served by the API";
    if (fn.source.kind === "job") return "job";
    const request = tables.get(fn.id);
    if (request !== undefined && !request.applied) return request.paused ? "paused" : "moving";
    if (running.has(fn.id)) return "running";
    if (request?.paused) return "paused";
    if (fn.startsDetached) return attached.has(fn.id) ? "attaching" : "detached";
    return "stopped";
  };

  const functions = async (): Promise<FunctionView[]> => {
    const { attached, tables } = await control();
    const running = new Set(options.runningFunctions());
    return plan.functions.map((fn) => {
      const request = tables.get(fn.id);
      return {
        ...describeFunction(fn),
        status: statusOf(fn, running, attached, tables),
        ...(request ? { table: request.table } : {}),
      };
    });
  };

  // Slower reads (parks and item counts scan tables), shared by every request for a few seconds.
  const deadLetters = cachedRead(4_000, () => deadLetterReport(endpoints));
  const itemCounts = new Map<string, CachedRead<{ count: number; atLeast: boolean }>>();
  /** A table's item count, at most 15 s old (2 s while `busy`: a replay fills it). */
  const itemsOf = (table: string, busy: boolean) => {
    let counter = itemCounts.get(table);
    if (counter === undefined) {
      counter = cachedRead(15_000, () => countItems(table, countCap));
      itemCounts.set(table, counter);
    }
    return counter(busy ? 2_000 : undefined).catch(() => undefined);
  };

  const declared = declaredProjections(options.app);

  const projections = async (): Promise<ProjectionView[]> => {
    const [snap, { attached, tables }, report] = await Promise.all([current(), control(), deadLetters()]);
    const running = new Set(options.runningFunctions());
    const depthOf = new Map(snap.queues.map((q) => [q.id, q]));
    return Promise.all(
      endpoints.projections.map(async (p): Promise<ProjectionView> => {
        const fn = plan.functions.find((f) => f.id === p.functionId) as PlannedFunction;
        const request = tables.get(p.functionId);
        const table = request?.table ?? p.table;
        const job = jobs.running(p.name);
        const depth = depthOf.get(queueIdOf(p.functionId));
        const status = statusOf(fn, running, attached, tables);
        const isDeclared = declared.has(p.name);
        const detached = fn.startsDetached === true && !attached.has(fn.id);
        const [view, detail] = job
          ? ([
              job.action === "warm-up" ? "warming up" : "rebuilding",
              job.messages.at(-1) ?? `${job.action} started`,
            ] as const)
          : status === "running"
            ? (["live", request ? `writes ${request.table}` : "consuming its queue"] as const)
            : status === "detached"
              ? (["detached", "buffering in its queue until warmed up"] as const)
              : status === "attaching"
                ? (["warming up", "attaching its consumer"] as const)
                : status === "paused" || status === "moving"
                  ? (["rebuilding", `consumer ${status} (a rebuild)`] as const)
                  : (["stopped", "its consumer is not running"] as const);
        const recent = jobs
          .list()
          .some(
            (j) =>
              j.projection === p.name && Date.parse(j.finishedAt ?? new Date().toISOString()) > Date.now() - 20_000,
          );
        const items = await itemsOf(table, recent);
        return {
          name: p.name,
          service: fn.owner.kind === "service" ? fn.owner.name : "",
          functionId: p.functionId,
          status: view,
          detail,
          table,
          ...(items ? { items } : {}),
          queue: { visible: depth?.visible ?? 0, inFlight: depth?.inFlight ?? 0 },
          deadLetters: depth?.deadLetters ?? 0,
          parked: report.parked.filter((park) => park.projection === p.name).length,
          canWarmUp: isDeclared && detached && job === undefined,
          // A generation still being built is warmed up, not rebuilt; the API reads the serving one.
          canRebuild:
            isDeclared &&
            findProjectionGeneration(options.app, p.name)?.generation.serving === true &&
            !detached &&
            status === "running" &&
            job === undefined,
        };
      }),
    );
  };

  const commands = cachedRead(2_000, () =>
    recentCommands(
      resources.tableNames.get(ids.apiCommandsTable()),
      outcomeTables(options.app, resources.tableNames),
      200,
    ),
  );

  return {
    async overview() {
      const [snap, projectionViews, functionViews, report] = await Promise.all([
        current(),
        projections(),
        functions(),
        deadLetters(),
      ]);
      return {
        generatedAt: new Date().toISOString(),
        target: { kind: "local" },
        prefix,
        startedAt,
        buses: snap.buses,
        archive: snap.archive,
        projections: projectionViews,
        functions: functionViews,
        queues: snap.queues,
        deadLetters: report,
        replays: jobs.list(),
      };
    },
    buses: async () => (await current()).buses,
    archive: async () => (await current()).archive,
    projections,
    functions,
    deadLetters: (): Promise<DeadLetterReport> => deadLetters(),
    commands: async (limit) => (await commands()).slice(0, limit),
    trace: (commandId) => telemetry.trace(commandId),
    hopLatencies: (minutes) => telemetry.hopLatencies(minutes),
    series: () => samples,
    recentEvents: (filter, limit) => recentMatching(watch, filter, limit),
    subscribe: (listener) => watch.subscribe(listener),
    async redrive(projection, aggregate, { skip }) {
      try {
        return await redriveForConsole(endpoints, projection, aggregate, { skip, timeoutMs: 20_000 });
      } finally {
        deadLetters.invalidate();
      }
    },
    async moveDeadLetters(queueId) {
      try {
        return await moveForConsole(endpoints, queueId);
      } finally {
        deadLetters.invalidate();
      }
    },
    async startReplay(projection, action) {
      requireDeclared(declared, projection);
      const running = jobs.running(projection);
      if (running !== undefined) {
        throw new ConsoleRequestError(`${projection}: a ${running.action} is already running`, 409);
      }
      const fn = plan.functions.find((f) => f.id === projection.replace(".", "-") && f.role === "projection");
      if (action === "warm-up" && fn?.startsDetached !== true) {
        throw new ConsoleRequestError(`${projection} is live from the start; only a warmUp projection warms up`, 409);
      }
      if (action === "rebuild" && findProjectionGeneration(options.app, projection)?.generation.serving !== true) {
        throw new ConsoleRequestError(`${projection} is a generation being built: warm it up instead`, 409);
      }
      return jobs.start(projection, action);
    },
    replays: () => jobs.list(),
    async stop() {
      stopping = true;
      if (timer !== undefined) clearTimeout(timer);
      await inFlight;
      await Promise.all([jobs.stop(), watch.stop()]);
    },
  };
}
