/**
 * The plan's model: every resource an application plans (shared/plan.ts builds them), the
 * environment variable names the framework reads, the logical ids and the defaults. Pure.
 */
import type { PartKind } from "../parts.ts";
import type { AppDefinition, BusKind, QueueMappingOptions, StreamReadMode } from "../topology.ts";

/** Who owns a resource: one bus, one service, or the API. Law C is checked against it. */
export type Owner = { kind: "bus"; name: string } | { kind: "service"; name: string } | { kind: "api" };

export interface PlannedStream {
  readonly bus: string;
  /** "events": arbitrated, relayed to a topic, archived; "telemetry": delivered to columnar files (law K). */
  readonly kind: BusKind;
  readonly name: string;
  readonly shards: number;
  readonly retentionHours: number;
}

/**
 * A telemetry bus's storage (law K): no relay, no arbitration, no topic, no archiver. On AWS a
 * Firehose delivery stream reads the bus's stream and writes Parquet files into `bucket` under
 * `prefix` (partitioned by hour, in UTC: `year=yyyy/month=MM/day=dd/hour=HH/`), typed by the
 * Glue table `database`.`table`, queried with Athena; locally the analytics sink
 * (shared/analytics/local-sink.ts) writes the same layout into the local bucket.
 */
export interface PlannedTelemetryStore {
  readonly bus: string;
  readonly streamName: string;
  /** The local name; on AWS the bucket name is made globally unique by the stack. */
  readonly bucket: string;
  /** Key prefix of the Parquet files, ending in "/". */
  readonly prefix: string;
  readonly deliveryStream: string;
  /** The Glue database and table of the files (Athena queries them as `telemetry`). */
  readonly database: string;
  readonly table: string;
  /** The Athena workgroup its queries run in (results encrypted, bytes scanned capped). */
  readonly workGroup: string;
  /** Days a Parquet file is kept before S3 expires it. */
  readonly retentionDays: number;
  readonly owner: Owner;
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
  /** Every table is keyed by one string attribute, */
  readonly partitionKey: string;
  /** and, for a few (the journeys index), a string sort key. @default none */
  readonly sortKey?: string;
  /** The attribute (epoch seconds) at which DynamoDB expires an item. @default none: items never expire */
  readonly timeToLiveAttribute?: string;
  readonly owner: Owner;
}

export interface PlannedSubscription {
  readonly bus: string;
  readonly queueId: string;
  /** SNS filter policy on the `type` message attribute. */
  readonly eventTypes: readonly string[];
}

export type FunctionRole =
  | "api"
  | "command-handler"
  | "projection"
  | "reactor"
  | "relay"
  | "archiver"
  | "replayer"
  /** A telemetry bus's journey indexer: span records into the journeys table. */
  | "journeys";

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
  /** The telemetry buses' storage (at most one telemetry bus). */
  readonly telemetry: readonly PlannedTelemetryStore[];
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
  /** The telemetry bus's stream every function emits to (absent: telemetry off). */
  telemetryStream: "CANON_TELEMETRY_STREAM",
  /** The journeys index (written by the journey indexer, read by the API). */
  journeyTable: "CANON_JOURNEY_TABLE",
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

/** Every queue mapping's defaults (`QueueMappingOptions`). */
export const defaultMapping: Required<QueueMappingOptions> = {
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
export const commandMaxConcurrency = 10;

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
  /** A telemetry bus's journeys index: its spans, keyed by trace id and span id. */
  journeysTable: () => "journeys",
  journeyIndexer: (bus: string) => `${bus}-journeys`,
  journeyIndexerFailureQueue: (bus: string) => `${bus}-journeys-failures`,
} as const;

/** How long the journeys index keeps a span (its items' `expiresAt`): 7 days. */
export const journeyRetentionDays = 7;

/** How long a telemetry bus keeps its Parquet files, unless it says (`BusDefinition.telemetryRetentionDays`). */
export const telemetryRetentionDays = 90;

/** The HTTP API route of the rpc function: `/<package>.<Service>/<Method>`. */
export const rpcRoute = "POST /{service}/{method}";
