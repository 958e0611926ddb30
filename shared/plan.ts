/**
 * Derives every resource of an application from its declaration (shared/topology.ts).
 * Pure: no SDK, no CDK. The CDK stacks and the local cloud both consume this plan, and
 * a test holds the synthesized templates against it.
 */
import { type PartKind, partModule } from "./parts.ts";
import type {
  AppDefinition,
  BusDefinition,
  ProjectionDefinition,
  QueueMappingOptions,
  ReactorDefinition,
  ServiceDefinition,
  StreamReadMode,
} from "./topology.ts";

/** Who owns a resource: one bus, one service, or the API. Law C is checked against it. */
export type Owner = { kind: "bus"; name: string } | { kind: "service"; name: string } | { kind: "api" };

export interface PlannedStream {
  readonly bus: string;
  readonly name: string;
  readonly shards: number;
  readonly retentionHours: number;
}

export interface PlannedTopic {
  readonly bus: string;
  /** Always a FIFO topic: ordering per aggregate (message group = aggregate id). */
  readonly name: string;
}

export interface PlannedQueue {
  readonly id: string;
  readonly name: string;
  /** FIFO for everything fed by the FIFO topic or grouped by aggregate; standard where AWS requires it. */
  readonly fifo: boolean;
  readonly owner: Owner;
  readonly visibilityTimeoutSeconds: number;
  /** The dead-letter queue's name; every queue has one. */
  readonly deadLetterQueueName: string;
  readonly maxReceiveCount: number;
}

/** A bus's archive: the permanent log (law J), versioned, never expiring. */
export interface PlannedBucket {
  readonly bus: string;
  /** The local name; on AWS the bucket name is made globally unique by the stack. */
  readonly name: string;
  readonly owner: Owner;
}

export interface PlannedTable {
  readonly id: string;
  readonly name: string;
  /** Every table is keyed by one string attribute. */
  readonly partitionKey: string;
  readonly owner: Owner;
}

export interface PlannedSubscription {
  readonly bus: string;
  readonly queueId: string;
  /** SNS filter policy on the `type` message attribute. */
  readonly eventTypes: readonly string[];
}

export type FunctionRole = "api" | "command-handler" | "projection" | "reactor" | "relay" | "archiver" | "replayer";

export type EventSource =
  | {
      readonly kind: "sqs";
      readonly queueId: string;
      readonly batchSize: number;
      /** Batches handled at once (ScalingConfig.MaximumConcurrency); per message group, one at a time. */
      readonly maxConcurrency: number;
    }
  | {
      readonly kind: "kinesis";
      readonly bus: string;
      readonly batchSize: number;
      readonly batchWindowSeconds: number;
      readonly startingPosition: "TRIM_HORIZON";
      readonly bisectBatchOnError: boolean;
      /**
       * Retries of a failed batch before Lambda gives up on it (-1: until the record expires).
       * A batch given up on is never skipped silently: its description (shard, sequence range)
       * goes to `onFailureQueueId`, whose alarm fires. See `streamRetryAttempts`.
       */
      readonly maxRetryAttempts: number;
      /**
       * Lambda gives up on a record older than this (-1: only the stream's retention bounds it),
       * into `onFailureQueueId` like a batch out of retries. See `streamMaxRecordAgeSeconds`.
       * AWS only: the local runner (shared/runner/kinesis-source.ts) does not apply it.
       */
      readonly maxRecordAgeSeconds: number;
      /** Queue (by id) that receives the description of a batch given up on. */
      readonly onFailureQueueId: string;
      /**
       * How the mapping reads the stream on AWS: polling (shared throughput), or through an
       * enhanced fan-out consumer registered on the stream (`BusDefinition.relayReadsBy`). The
       * local runner reads every stream the same way (woken on append).
       */
      readonly readsBy: StreamReadMode;
      /** The stream consumer's name (enhanced fan-out only), unique on its stream. */
      readonly consumerName?: string;
      /** Batches of one shard handled at once, split by partition key (ParallelizationFactor). */
      readonly parallelizationFactor: number;
    }
  | {
      readonly kind: "http";
      /** The HTTP API route it serves (API Gateway's route key). @default every route no other function serves */
      readonly route?: string;
    }
  /** Started by a job (a warm-up or rebuild), not by an event source. */
  | { readonly kind: "job" };

/** What a function's environment variable points at, and what the function may do with it. */
export type ResourceRef =
  | { readonly kind: "table"; readonly id: string; readonly access: "read" | "readWrite" }
  | { readonly kind: "queue"; readonly id: string; readonly access: "send" }
  | { readonly kind: "stream"; readonly bus: string; readonly access: "write" | "read" }
  | { readonly kind: "bucket"; readonly bus: string; readonly access: "read" | "readWrite" }
  | { readonly kind: "topic"; readonly bus: string; readonly access: "publish" }
  | { readonly kind: "value"; readonly value: string };

export interface PlannedFunction {
  readonly id: string;
  readonly role: FunctionRole;
  readonly owner: Owner;
  /**
   * Module path from the repo root: its `handler` export is called, or, with `entry`, the module
   * that declares the part the framework builds the handler from.
   */
  readonly handler: string;
  /** The part `handler` declares, when the framework builds the Lambda entry (shared/entries/). */
  readonly entry?: PlannedEntry;
  readonly source: EventSource;
  /** Environment variable name → what it refers to. The grants follow from it. */
  readonly env: Readonly<Record<string, ResourceRef>>;
  /** The module's export to call. @default "handler" */
  readonly handlerExport?: string;
  /** Its event source starts disabled (a warming-up projection), enabled when the replay is done. */
  readonly startsDetached?: boolean;
}

/** A Lambda entry the framework builds from a declared part (shared/parts.ts). */
export interface PlannedEntry {
  readonly kind: PartKind;
  readonly service: string;
  /** The projection's or the reactor's name. */
  readonly name?: string;
  /** A projection's kind: a view folded per aggregate, or counters (shared/parts.ts). */
  readonly view?: "aggregate" | "counters";
  /** An API function's view of the app: its services' names, commands and views. */
  readonly app?: Omit<AppDefinition, "relayHandler" | "archiverHandler">;
  /** A command handler's contract module (its decider is `handler`). */
  readonly contract?: string;
  /** A reactor's targets (an API's command services): each service, and the module of its contract. */
  readonly targets?: Readonly<Record<string, string>>;
}

export interface AppPlan {
  readonly prefix: string;
  readonly streams: readonly PlannedStream[];
  readonly topics: readonly PlannedTopic[];
  readonly buckets: readonly PlannedBucket[];
  readonly queues: readonly PlannedQueue[];
  readonly tables: readonly PlannedTable[];
  readonly subscriptions: readonly PlannedSubscription[];
  readonly functions: readonly PlannedFunction[];
}

/** Environment variable names the framework reads; one place, so writer and reader agree. */
export const envNames = {
  service: "CANON_SERVICE",
  bus: "CANON_BUS",
  aggregateType: "CANON_AGGREGATE_TYPE",
  streamName: "CANON_STREAM_NAME",
  topicArn: "CANON_TOPIC_ARN",
  table: "CANON_TABLE",
  stateTable: "CANON_STATE_TABLE",
  outcomesTable: "CANON_OUTCOMES_TABLE",
  arbitrationTable: "CANON_ARBITRATION_TABLE",
  archiveBucket: "CANON_ARCHIVE_BUCKET",
  /** The receive at which a projection parks a failing event (shared/handlers/parking.ts). */
  parkAfterReceives: "CANON_PARK_AFTER_RECEIVES",
  deadLetterQueueUrl: "CANON_DEAD_LETTER_QUEUE_URL",
  /** A replayer's projection: its consumer function id and subscribed event types (JSON). */
  consumerFunction: "CANON_CONSUMER_FUNCTION",
  projectionEvents: "CANON_PROJECTION_EVENTS",
  apiCommandsTable: "CANON_API_COMMANDS_TABLE",
  /** Per service: the command queue the API and reactors send to. */
  commandQueueUrl: (service: string) => `CANON_COMMAND_QUEUE_URL_${envSuffix(service)}`,
  /** Per service: its outcomes table, read by the API. */
  serviceOutcomesTable: (service: string) => `CANON_OUTCOMES_TABLE_${envSuffix(service)}`,
  /** Per queryable projection: its table, read by the API. */
  viewTable: (service: string, view: string) => `CANON_VIEW_TABLE_${envSuffix(service)}_${envSuffix(view)}`,
} as const;

function envSuffix(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

const defaultMapping: Required<QueueMappingOptions> = {
  batchSize: 10,
  batchWindowSeconds: 0,
  maxReceiveCount: 5,
  visibilityTimeoutSeconds: 30,
  maxConcurrency: 4,
};

/**
 * How long the relay and the archiver retry a failed batch: the largest count Lambda accepts.
 * Malformed records never fail a batch (the relay dead-letters them itself, the archiver keeps
 * them with their reason), so what fails one is an outage or a throttle of SNS, DynamoDB, S3 or
 * KMS, or a bug. Giving up is costly (the relay: a commit never arbitrated nor published while
 * the archive holds it; the archiver: a gap to re-archive from the stream), and blocking is
 * not (the shard waits, in order, and the iterator-age alarm has paged someone), so they retry
 * as often as Lambda allows: at a second or more a failing attempt (the SDK's own retries run
 * inside it), hours of an outage. Not for ever (-1): one bad record would then hold its shard
 * for the stream's whole retention, until Kinesis expired everything behind it unseen.
 */
export const streamRetryAttempts = 10_000;

/**
 * The age at which the relay and the archiver give up on a record: three quarters of the
 * stream's retention (18 h of 24), at most Lambda's 7 days. Without it (-1), a record that never
 * gets through (a function throttled before it runs, which no retry count bounds) would be
 * expired by Kinesis, which is silent; with it, Lambda hands the batch's description to the
 * failure queue (its alarm fires) while the stream still holds the record for a quarter of
 * the retention, to replay it. The archiver's iterator-age alarm fires at half the retention,
 * before this; the relay's within minutes.
 */
export function streamMaxRecordAgeSeconds(retentionHours: number): number {
  return Math.min(Math.floor((retentionHours * 3600 * 3) / 4), 7 * 24 * 3600);
}

/**
 * A command handler spends most of an invocation waiting for its commits to show (group commit
 * waits once per batch), so it gets more batches at once than a projection by default.
 */
const commandMaxConcurrency = 10;

/** Logical ids, shared by the plan's consumers. */
export const ids = {
  commandQueue: (service: string) => `${service}-commands`,
  stateQueue: (service: string) => `${service}-state`,
  stateTable: (service: string) => `${service}-state`,
  outcomesTable: (service: string) => `${service}-outcomes`,
  projectionQueue: (service: string, projection: string) => `${service}-${projection}`,
  projectionTable: (service: string, projection: string) => `${service}-${projection}`,
  reactorQueue: (service: string, reactor: string) => `${service}-${reactor}`,
  arbitrationTable: (bus: string) => `${bus}-arbitration`,
  relayDeadLetterQueue: (bus: string) => `${bus}-relay-failures`,
  archiverFailureQueue: (bus: string) => `${bus}-archiver-failures`,
  apiCommandsTable: () => "api-commands",
} as const;

/** Builds the full resource plan of an application. Throws on an inconsistent declaration. */
export function planApp(app: AppDefinition): AppPlan {
  validateApp(app);
  const name = (id: string) => `${app.prefix}-${id}`;
  const queues: PlannedQueue[] = [];
  const tables: PlannedTable[] = [];
  const subscriptions: PlannedSubscription[] = [];
  const functions: PlannedFunction[] = [];

  const queue = (id: string, owner: Owner, options: QueueMappingOptions | undefined, fifo = true): PlannedQueue => {
    const merged = { ...defaultMapping, ...options };
    const suffix = fifo ? ".fifo" : "";
    const planned: PlannedQueue = {
      id,
      name: `${name(id)}${suffix}`,
      fifo,
      owner,
      visibilityTimeoutSeconds: merged.visibilityTimeoutSeconds,
      deadLetterQueueName: `${name(id)}-dlq${suffix}`,
      maxReceiveCount: merged.maxReceiveCount,
    };
    queues.push(planned);
    return planned;
  };
  const table = (id: string, owner: Owner, partitionKey = "id"): PlannedTable => {
    const planned = { id, name: name(id), partitionKey, owner };
    tables.push(planned);
    return planned;
  };
  const sqsSource = (queueId: string, options: QueueMappingOptions | undefined): EventSource => ({
    kind: "sqs",
    queueId,
    batchSize: Math.min(options?.batchSize ?? defaultMapping.batchSize, 10),
    maxConcurrency: options?.maxConcurrency ?? defaultMapping.maxConcurrency,
  });

  const streams = app.buses.map(
    (bus): PlannedStream => ({
      bus: bus.name,
      name: name(bus.name),
      shards: bus.shards ?? 2,
      retentionHours: bus.retentionHours ?? 24,
    }),
  );
  const topics = app.buses.map((bus): PlannedTopic => ({ bus: bus.name, name: `${name(bus.name)}.fifo` }));
  const buckets = app.buses.map(
    (bus): PlannedBucket => ({
      bus: bus.name,
      name: `${name(bus.name)}-archive`,
      owner: { kind: "bus", name: bus.name },
    }),
  );

  for (const bus of app.buses) {
    const owner: Owner = { kind: "bus", name: bus.name };
    const arbitration = table(ids.arbitrationTable(bus.name), owner);
    // Standard: Lambda's on-failure destination for a stream cannot be a FIFO queue.
    const failures = queue(ids.relayDeadLetterQueue(bus.name), owner, undefined, false);
    functions.push({
      id: `${bus.name}-relay`,
      role: "relay",
      owner,
      ...busCode(app.relayHandler, "relay"),
      source: {
        kind: "kinesis",
        bus: bus.name,
        batchSize: 100,
        batchWindowSeconds: 0,
        startingPosition: "TRIM_HORIZON",
        bisectBatchOnError: true,
        maxRetryAttempts: streamRetryAttempts,
        maxRecordAgeSeconds: streamMaxRecordAgeSeconds(bus.retentionHours ?? 24),
        onFailureQueueId: failures.id,
        ...streamReader(bus.relayReadsBy ?? "polling", name(`${bus.name}-relay`)),
        parallelizationFactor: bus.relayParallelization ?? 2,
      },
      env: {
        [envNames.bus]: { kind: "value", value: bus.name },
        [envNames.topicArn]: { kind: "topic", bus: bus.name, access: "publish" },
        [envNames.arbitrationTable]: { kind: "table", id: arbitration.id, access: "readWrite" },
        [envNames.deadLetterQueueUrl]: { kind: "queue", id: failures.id, access: "send" },
        // Claim checks: large commits are read from it, large events written to it.
        [envNames.archiveBucket]: { kind: "bucket", bus: bus.name, access: "readWrite" },
      },
    });
  }

  /** A service's write side: its command queue and handler, its state table and projection, its outcomes. */
  const planCommandSide = (service: ServiceDefinition, owner: Owner) => {
    const commands = queue(ids.commandQueue(service.name), owner, service.commandMapping);
    const stateTable = table(ids.stateTable(service.name), owner);
    const outcomes = table(ids.outcomesTable(service.name), owner);
    const stateQueue = queue(ids.stateQueue(service.name), owner, undefined);
    subscriptions.push({ bus: service.bus, queueId: stateQueue.id, eventTypes: service.events ?? [] });
    functions.push({
      id: `${service.name}-command-handler`,
      role: "command-handler",
      owner,
      handler: service.commandHandler as string,
      ...(service.aggregate !== undefined && {
        entry: {
          kind: "command-handler",
          service: service.name,
          contract: partModule(service.name, { kind: "contract" }),
        },
      }),
      source: sqsSource(commands.id, { maxConcurrency: commandMaxConcurrency, ...service.commandMapping }),
      env: {
        [envNames.service]: { kind: "value", value: service.name },
        [envNames.bus]: { kind: "value", value: service.bus },
        [envNames.aggregateType]: { kind: "value", value: service.aggregateType as string },
        [envNames.streamName]: { kind: "stream", bus: service.bus, access: "write" },
        [envNames.stateTable]: { kind: "table", id: stateTable.id, access: "read" },
        [envNames.outcomesTable]: { kind: "table", id: outcomes.id, access: "readWrite" },
        // Claim checks: a commit too large for a stream record is stored here.
        [envNames.archiveBucket]: { kind: "bucket", bus: service.bus, access: "readWrite" },
      },
    });
    functions.push({
      id: `${service.name}-state`,
      role: "projection",
      owner,
      handler: service.stateProjection as string,
      ...(service.aggregate !== undefined && { entry: { kind: "state", service: service.name } }),
      source: sqsSource(stateQueue.id, undefined),
      env: {
        [envNames.table]: { kind: "table", id: stateTable.id, access: "readWrite" },
        ...claimReader(service.bus),
        ...parking(stateQueue),
      },
    });
  };

  for (const bus of app.buses) {
    const owner: Owner = { kind: "bus", name: bus.name };
    // Standard, as the relay's: an on-failure destination cannot be FIFO.
    const failures = queue(ids.archiverFailureQueue(bus.name), owner, undefined, false);
    functions.push({
      id: `${bus.name}-archiver`,
      role: "archiver",
      owner,
      ...busCode(app.archiverHandler, "archiver"),
      source: {
        kind: "kinesis",
        bus: bus.name,
        batchSize: 500,
        batchWindowSeconds: 5,
        startingPosition: "TRIM_HORIZON",
        bisectBatchOnError: true,
        // Never skip silently: every record reaches the archive (invariant 4), or its batch's
        // description reaches the failure queue while the stream still holds it to replay.
        maxRetryAttempts: streamRetryAttempts,
        maxRecordAgeSeconds: streamMaxRecordAgeSeconds(bus.retentionHours ?? 24),
        onFailureQueueId: failures.id,
        // It batches for seconds anyway: an enhanced fan-out consumer would buy it nothing.
        readsBy: "polling",
        // Its objects and the shard's manifest follow the shard's order: one batch at a time.
        parallelizationFactor: 1,
      },
      env: {
        [envNames.bus]: { kind: "value", value: bus.name },
        [envNames.archiveBucket]: { kind: "bucket", bus: bus.name, access: "readWrite" },
        [envNames.streamName]: { kind: "stream", bus: bus.name, access: "read" },
      },
    });
  }

  for (const service of app.services) {
    const owner: Owner = { kind: "service", name: service.name };
    if (service.commandHandler !== undefined) planCommandSide(service, owner);

    for (const { projection, name, detached } of service.projections.flatMap(projectionGenerations)) {
      const q = queue(ids.projectionQueue(service.name, name), owner, projection.mapping);
      const t = table(ids.projectionTable(service.name, name), owner);
      subscriptions.push({ bus: service.bus, queueId: q.id, eventTypes: projection.events });
      const consumer = `${service.name}-${name}`;
      const code = partCode(service, "projection", projection);
      functions.push({
        id: consumer,
        role: "projection",
        owner,
        ...code,
        source: sqsSource(q.id, projection.mapping),
        env: {
          [envNames.table]: { kind: "table", id: t.id, access: "readWrite" },
          ...claimReader(service.bus),
          ...parking(q),
        },
        ...(detached ? { startsDetached: true } : {}),
      });
      if (detached) {
        // The same module's `replay` export: it fills the table from the archive, then attaches the consumer.
        functions.push({
          id: `${consumer}-replayer`,
          role: "replayer",
          owner,
          handler: code.handler,
          ...(code.entry !== undefined && { entry: { ...code.entry, kind: "replayer" } }),
          handlerExport: "replay",
          source: { kind: "job" },
          env: {
            [envNames.table]: { kind: "table", id: t.id, access: "readWrite" },
            [envNames.bus]: { kind: "value", value: service.bus },
            [envNames.archiveBucket]: { kind: "bucket", bus: service.bus, access: "read" },
            [envNames.streamName]: { kind: "stream", bus: service.bus, access: "read" },
            [envNames.consumerFunction]: { kind: "value", value: consumer },
            [envNames.projectionEvents]: { kind: "value", value: JSON.stringify(projection.events) },
          },
        });
      }
    }

    for (const reactor of service.reactors) {
      const q = queue(ids.reactorQueue(service.name, reactor.name), owner, reactor.mapping);
      subscriptions.push({ bus: service.bus, queueId: q.id, eventTypes: reactor.events });
      const sends: Record<string, ResourceRef> = {};
      for (const target of reactor.sendsTo) {
        sends[envNames.commandQueueUrl(target)] = { kind: "queue", id: ids.commandQueue(target), access: "send" };
      }
      functions.push({
        id: `${service.name}-${reactor.name}`,
        role: "reactor",
        owner,
        ...partCode(service, "reactor", reactor),
        source: sqsSource(q.id, reactor.mapping),
        env: { [envNames.service]: { kind: "value", value: service.name }, ...sends, ...claimReader(service.bus) },
      });
    }
  }

  const apiCommands = table(ids.apiCommandsTable(), { kind: "api" });
  const apiEnv: Record<string, ResourceRef> = {
    [envNames.apiCommandsTable]: { kind: "table", id: apiCommands.id, access: "readWrite" },
  };
  for (const service of app.services) {
    if (service.commandHandler !== undefined) {
      apiEnv[envNames.commandQueueUrl(service.name)] = {
        kind: "queue",
        id: ids.commandQueue(service.name),
        access: "send",
      };
      apiEnv[envNames.serviceOutcomesTable(service.name)] = {
        kind: "table",
        id: ids.outcomesTable(service.name),
        access: "read",
      };
    }
    for (const projection of service.projections) {
      if (projection.queryable === false) continue;
      // The view is the serving generation's table: a next generation is read only once it serves.
      const serving = projectionGenerations(projection).find((g) => g.serving);
      apiEnv[envNames.viewTable(service.name, projection.name)] = {
        kind: "table",
        id: ids.projectionTable(service.name, serving?.name ?? projection.name),
        access: "read",
      };
    }
  }
  functions.push({
    id: "api",
    role: "api",
    owner: { kind: "api" },
    ...apiCode(app, app.apiHandler, "api"),
    source: { kind: "http" },
    env: apiEnv,
  });
  if (app.rpcHandler !== undefined || app.rpc === true) {
    // Connect and gRPC-Web: the only two-segment POSTs (the JSON API's are /commands/{service}/{command}).
    functions.push({
      id: "api-rpc",
      role: "api",
      owner: { kind: "api" },
      ...apiCode(app, app.rpcHandler, "rpc"),
      source: { kind: "http", route: rpcRoute },
      env: apiEnv,
    });
  }

  return { prefix: app.prefix, streams, topics, buckets, queues, tables, subscriptions, functions };
}

/** The module a bus function runs: the app's own, or the kit's handler as a built entry. */
function busCode(handler: string | undefined, kind: "relay" | "archiver"): { handler: string; entry?: PlannedEntry } {
  if (handler !== undefined) return { handler };
  return { handler: `shared/handlers/${kind}.ts`, entry: { kind, service: "" } };
}

/**
 * The module an API function runs: the app's own, or the entry the framework builds from the
 * services' declarations: what the API reads of the app (its services' names, commands and views)
 * and each command service's contract module, and nothing else of the app.
 */
function apiCode(
  app: AppDefinition,
  handler: string | undefined,
  kind: "api" | "rpc",
): { readonly handler: string; readonly entry?: PlannedEntry } {
  if (handler !== undefined) return { handler };
  const contracts: Record<string, string> = {};
  for (const service of app.services) {
    if (service.aggregate !== undefined) contracts[service.name] = partModule(service.name, { kind: "contract" });
  }
  const manifest: Omit<AppDefinition, "relayHandler" | "archiverHandler"> = {
    prefix: app.prefix,
    buses: app.buses,
    services: app.services.map((service) => ({
      name: service.name,
      bus: service.bus,
      ...(service.commands !== undefined && { commands: service.commands }),
      projections: service.projections.map(({ name, events, key, queryable }) => ({
        name,
        events,
        key,
        ...(queryable !== undefined && { queryable }),
      })),
      reactors: [],
    })),
  };
  return { handler: `shared/entries/${kind}.ts`, entry: { kind, service: "", app: manifest, targets: contracts } };
}

/**
 * The module a projection or a reactor runs: its `handler` module, or, for a declared part
 * (shared/parts.ts), its module in the service's folder with the entry the framework builds. A
 * reactor's entry names the contract module of each service it sends to.
 */
function partCode(
  service: ServiceDefinition,
  kind: "projection" | "reactor",
  part: ProjectionDefinition | ReactorDefinition,
): { readonly handler: string; readonly entry?: PlannedEntry } {
  if (part.handler !== undefined) return { handler: part.handler };
  const entry: PlannedEntry = { kind, service: service.name, name: part.name };
  if (kind === "reactor") {
    const targets: Record<string, string> = {};
    for (const target of (part as ReactorDefinition).sendsTo) {
      targets[target] = partModule(target, { kind: "contract" });
    }
    return { handler: partModule(service.name, { kind, name: part.name }), entry: { ...entry, targets } };
  }
  const view = "counters" in part ? "counters" : "aggregate";
  return { handler: partModule(service.name, { kind, name: part.name }), entry: { ...entry, view } };
}

/**
 * Sequenced parking for a projection (shared/handlers/parking.ts): an event still failing two
 * receives before the queue would dead-letter it is parked with its aggregate, so the aggregate's
 * order holds while others flow on. A queue with fewer than 4 receives leaves no room: failing
 * events then go to its dead-letter queue.
 */
function parking(queue: PlannedQueue): Record<string, ResourceRef> {
  if (queue.maxReceiveCount < 4) return {};
  return { [envNames.parkAfterReceives]: { kind: "value", value: String(queue.maxReceiveCount - 2) } };
}

/** How a stream mapping reads: by polling, or through the named enhanced fan-out consumer. */
function streamReader(
  readsBy: StreamReadMode,
  consumerName: string,
): { readonly readsBy: StreamReadMode; readonly consumerName?: string } {
  return readsBy === "enhanced-fan-out" ? { readsBy, consumerName } : { readsBy };
}

/** Read access to a bus's archive, where events too large for a message wait (claim checks). */
function claimReader(bus: string): Record<string, ResourceRef> {
  return { [envNames.archiveBucket]: { kind: "bucket", bus, access: "read" } };
}

/** The HTTP API route of the rpc function: `/<package>.<Service>/<Method>`. */
export const rpcRoute = "POST /{service}/{method}";

const namePattern = /^[a-z][a-z0-9-]{0,30}$/;

/** One generation of a projection the plan holds (see `ProjectionDefinition.generations`). */
export interface ProjectionGeneration {
  readonly projection: ProjectionDefinition;
  readonly generation: number;
  /** Its name in ids (`balances`, `balances-g2`): generation 1 keeps the projection's own name. */
  readonly name: string;
  /** The API reads this one. */
  readonly serving: boolean;
  /** Its consumer starts detached, attached once warmed up from the archive. */
  readonly detached: boolean;
}

/** A projection's generations in the plan: the serving one, and the next while it is built. */
export function projectionGenerations(projection: ProjectionDefinition): ProjectionGeneration[] {
  const { serving, next } = projection.generations ?? { serving: 1 };
  const name = (generation: number) => (generation === 1 ? projection.name : `${projection.name}-g${generation}`);
  return [
    { projection, generation: serving, name: name(serving), serving: true, detached: projection.warmUp === true },
    ...(next === undefined ? [] : [{ projection, generation: next, name: name(next), serving: false, detached: true }]),
  ];
}

/** The projection, and which generation of it, a `<service>.<name>` names (`accounts.balances-g2`). */
export function findProjectionGeneration(
  app: AppDefinition,
  qualified: string,
): { readonly service: ServiceDefinition; readonly generation: ProjectionGeneration } | undefined {
  const [serviceName, name] = qualified.split(".");
  const service = app.services.find((s) => s.name === serviceName);
  for (const projection of service?.projections ?? []) {
    const generation = projectionGenerations(projection).find((g) => g.name === name);
    if (service && generation) return { service, generation };
  }
  return undefined;
}

/** Every projection generation an app plans, as `<service>.<name>`. */
export function plannedProjectionNames(app: AppDefinition): string[] {
  return app.services.flatMap((s) => s.projections.flatMap(projectionGenerations).map((g) => `${s.name}.${g.name}`));
}

function validateApp(app: AppDefinition): void {
  const problems: string[] = [];
  if (!namePattern.test(app.prefix)) problems.push(`prefix "${app.prefix}" must match ${namePattern}`);
  const busNames = new Set(app.buses.map((b: BusDefinition) => b.name));
  const serviceNames = new Set<string>();
  const readModes: readonly (StreamReadMode | undefined)[] = ["polling", "enhanced-fan-out", undefined];
  for (const bus of app.buses) {
    if (!namePattern.test(bus.name)) problems.push(`bus "${bus.name}" must match ${namePattern}`);
    if (!readModes.includes(bus.relayReadsBy)) {
      problems.push(
        `bus "${bus.name}": relayReadsBy must be "polling" or "enhanced-fan-out", not ${JSON.stringify(bus.relayReadsBy)}`,
      );
    }
    const lanes = bus.relayParallelization;
    if (lanes !== undefined && !(Number.isInteger(lanes) && lanes >= 1 && lanes <= 10)) {
      problems.push(`bus "${bus.name}": relayParallelization must be an integer from 1 to 10, not ${lanes}`);
    }
  }
  for (const service of app.services as readonly ServiceDefinition[]) {
    if (!namePattern.test(service.name)) problems.push(`service "${service.name}" must match ${namePattern}`);
    if (serviceNames.has(service.name)) problems.push(`service "${service.name}" is declared twice`);
    serviceNames.add(service.name);
    if (!busNames.has(service.bus)) problems.push(`service "${service.name}" is on unknown bus "${service.bus}"`);
    const commandSide = [service.commandHandler, service.stateProjection, service.aggregateType];
    if (commandSide.some((v) => v !== undefined) && commandSide.some((v) => v === undefined)) {
      problems.push(`service "${service.name}": commandHandler, stateProjection and aggregateType go together`);
    }
    if (service.commandHandler === undefined && (service.commands?.length ?? 0) > 0) {
      problems.push(`service "${service.name}" declares commands but no commandHandler`);
    }
    const local = new Set<string>(["commands", "state", "outcomes"]);
    for (const part of [...service.projections, ...service.reactors]) {
      if (!namePattern.test(part.name)) problems.push(`${service.name}.${part.name}: name must match ${namePattern}`);
      if (local.has(part.name)) problems.push(`${service.name}.${part.name}: name is taken`);
      local.add(part.name);
      if (part.events.length === 0) problems.push(`${service.name}.${part.name}: subscribes to no event type`);
    }
    const mappings = [
      ["commandMapping", service.commandMapping],
      ...[...service.projections, ...service.reactors].map((p) => [`${p.name}.mapping`, p.mapping] as const),
    ] as const;
    for (const [where, mapping] of mappings) {
      const max = mapping?.maxConcurrency;
      // Lambda's ScalingConfig takes 2 to 1000.
      if (max !== undefined && !(Number.isInteger(max) && max >= 2 && max <= 1000)) {
        problems.push(`${service.name}.${where}: maxConcurrency must be an integer from 2 to 1000, not ${max}`);
      }
    }
    for (const projection of service.projections) {
      const { serving, next } = projection.generations ?? { serving: 1 };
      const where = `${service.name}.${projection.name}`;
      if (!Number.isInteger(serving) || serving < 1 || serving > 999) {
        problems.push(`${where}: generations.serving must be an integer from 1 to 999, not ${serving}`);
      }
      if (next !== undefined && (!Number.isInteger(next) || next <= serving || next > 999)) {
        problems.push(
          `${where}: generations.next must be an integer above serving (${serving}) and at most 999, not ${next}`,
        );
      }
      const taken = projectionGenerations(projection)
        .map((g) => g.name)
        .filter((name) => name !== projection.name);
      for (const other of [...service.projections, ...service.reactors]) {
        if (other !== projection && taken.includes(other.name)) {
          problems.push(`${where}: generation name "${other.name}" is taken by another projection or reactor`);
        }
      }
    }
  }
  if (app.apiHandler === undefined || (app.rpc === true && app.rpcHandler === undefined)) {
    for (const service of app.services) {
      if ((service.commands?.length ?? 0) > 0 && service.aggregate === undefined) {
        // The API's built entry reads the contracts from the services' contract.ts.
        problems.push(
          `service "${service.name}" takes API commands but declares no contract: name the app's apiHandler`,
        );
      }
    }
  }
  for (const service of app.services) {
    for (const reactor of service.reactors) {
      for (const target of reactor.sendsTo) {
        const targetService = app.services.find((s) => s.name === target);
        if (targetService === undefined)
          problems.push(`${service.name}.${reactor.name} sends to unknown service "${target}"`);
        else if (targetService.commandHandler === undefined) {
          problems.push(`${service.name}.${reactor.name} sends to "${target}", which takes no commands`);
        } else if (reactor.handler === undefined && targetService.aggregate === undefined) {
          // A declared reactor checks what it sends against its targets' aggregates.
          problems.push(`${service.name}.${reactor.name} sends to "${target}", which declares no aggregate`);
        }
      }
    }
  }
  if (problems.length > 0) throw new Error(`invalid application declaration:\n- ${problems.join("\n- ")}`);
}
