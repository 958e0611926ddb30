/**
 * The one declaration a service is made of. Both the CDK stacks (infra/) and the
 * embedded local cloud (shared/local-cloud, shared/runner) are built from these
 * types through `planApp` (shared/plan.ts), so local and cloud cannot drift.
 */
import type { CommandSpecs } from "./domain/commands.ts";
import type { AggregateDeclaration } from "./parts.ts";

/**
 * A bus: one Kinesis stream (the hot log), one SNS FIFO topic, one S3 archive; or, for a telemetry
 * bus (law K), one stream delivered to columnar files (no relay, no arbitration, no topic).
 */
export interface BusDefinition {
  readonly name: string;
  /**
   * `"events"`: the domain's events, arbitrated, fanned out and archived. `"telemetry"`: the
   * system's own mass-generated records (shared/telemetry), delivered to Parquet files for SQL
   * and indexed into command journeys; nothing subscribes to it. At most one per app.
   * @default "events"
   */
  readonly kind?: BusKind;
  /**
   * A telemetry bus only: the days its Parquet files are kept before S3 expires them (the journeys
   * index keeps 7 days whatever this says). @default 90
   */
  readonly telemetryRetentionDays?: number;
  /** @default 2 */
  readonly shards?: number;
  /** Stream retention; the archive keeps everything for ever. @default 24 */
  readonly retentionHours?: number;
  /**
   * How the relay (stream → topic) reads the stream on AWS. `"polling"`: Lambda's shared-throughput
   * reader, which polls each shard about once a second when it is idle (a commit waits 0–1 s, about
   * half a second on average, before the relay sees it), sharing the shard's 2 MB/s with the
   * archiver. `"enhanced-fan-out"`: a registered stream consumer that Kinesis pushes records to over
   * HTTP/2 (about 70 ms), with its own 2 MB/s per shard, billed per consumer-shard hour and per GB
   * read (docs/aws-capacity.md). The archiver always polls: it batches for seconds anyway. Locally
   * the runner wakes a stream's readers as soon as a record is appended, whichever is declared.
   * @default "polling"
   */
  readonly relayReadsBy?: StreamReadMode;
  /**
   * Batches of one shard the relay handles at once (Lambda's ParallelizationFactor, 1 to 10): a
   * shard's records are split by partition key, so one aggregate's commits stay in order and
   * in one lane, while unrelated aggregates are published side by side. The archiver reads each
   * shard one batch at a time (its objects and manifest follow the shard's order). @default 2
   */
  readonly relayParallelization?: number;
}

/** What a bus carries: domain events, or the system's telemetry. */
export type BusKind = "events" | "telemetry";

/** How a Lambda reads a Kinesis stream: shared-throughput polling, or an enhanced fan-out consumer. */
export type StreamReadMode = "polling" | "enhanced-fan-out";

/** How a Lambda reads an SQS queue (an event source mapping). */
export interface QueueMappingOptions {
  /** At most 10 for FIFO queues. @default 10 */
  readonly batchSize?: number;
  /** Standard queues only (FIFO queues do not batch by window). @default 0 */
  readonly batchWindowSeconds?: number;
  /** Receives before SQS moves a message to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** @default 30 */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * Batches handled at once (Lambda's ScalingConfig.MaximumConcurrency on AWS, at least 2; the
   * local runner's concurrent invocations). A FIFO queue never hands out two batches of one
   * message group at once, so order per aggregate holds whatever the concurrency.
   * @default 4; 10 for a command handler's queue (it mostly waits for its commits to show)
   */
  readonly maxConcurrency?: number;
}

/** A projection: events from the bus, filtered by type, into the service's own table. */
export interface ProjectionDefinition {
  /** Unique within the service; the view is `/views/{service}/{name}/{key}`. */
  readonly name: string;
  /**
   * Module (path from the repo root) whose `handler` export is the Lambda handler. @default none:
   * the projection is a declared part (shared/parts.ts), found in its service's folder, and the
   * framework builds its entry
   */
  readonly handler?: string;
  /** Event types the projection subscribes to (the SNS filter policy). */
  readonly events: readonly string[];
  /** Attribute of the table item that the view is keyed on. */
  readonly key: string;
  /** Whether the API may read it under `/views`. @default true */
  readonly queryable?: boolean;
  /**
   * Added to a running system (laws H, I): its queue is subscribed at once (and buffers), but its
   * consumer is attached only after a replay from the archive has passed the subscription point.
   * A `handler` module must then also export `replay` (see shared/archive/replay.ts); a declared part gets it. @default false
   */
  readonly warmUp?: boolean;
  /**
   * Blue/green rebuild by deploy (law G), on AWS as locally: `{ serving: 1, next: 2 }` plans
   * generation 2 beside generation 1 — its own table, queue and consumer (`<name>-g2`), detached
   * until it is warmed up from the archive — while the API keeps reading generation 1. Once it
   * is warm, declare `{ serving: 2 }` and deploy: reads move to generation 2 and generation 1
   * leaves the plan (its table is retained on AWS, to be deleted by hand). @default { serving: 1 }
   */
  readonly generations?: { readonly serving: number; readonly next?: number };
  readonly mapping?: QueueMappingOptions;
}

/** A reactor (process manager): consumes events from a queue and may issue commands. */
export interface ReactorDefinition {
  readonly name: string;
  /** As a projection's `handler`. @default none: a declared part (shared/parts.ts) */
  readonly handler?: string;
  readonly events: readonly string[];
  /** Services whose command queues this reactor may send to. */
  readonly sendsTo: readonly string[];
  readonly mapping?: QueueMappingOptions;
}

/**
 * One service: its commands, its aggregate, its projections and reactors, on one bus.
 * A service without `commandHandler` is projection-only (it owns views, takes no commands).
 */
export interface ServiceDefinition {
  readonly name: string;
  readonly bus: string;
  /**
   * The aggregate, declared as a value (shared/parts.ts): the framework builds the command
   * handler's and the state projection's entries from it. `service()` (shared/service.ts) fills
   * the fields below from it. @default none: the fields below name the modules
   */
  readonly aggregate?: AggregateDeclaration;
  /** The aggregate type its command handler decides for (e.g. "Account"). */
  readonly aggregateType?: string;
  /** Module whose `handler` export takes the service's commands (SQS FIFO). */
  readonly commandHandler?: string;
  /**
   * The service's command contract (`functions/<service>/commands.ts`): what the API, the command
   * handler and reactors validate its commands against (`contractsOf`). @default none
   */
  readonly contract?: CommandSpecs;
  /** Command names the API accepts for this service (each has a schema in `contract`). @default none */
  readonly commands?: readonly string[];
  /** Event types this service's aggregate emits (its own state projection reads them). @default none */
  readonly events?: readonly string[];
  /** Module whose `handler` keeps the aggregate state the command handler decides on. */
  readonly stateProjection?: string;
  readonly projections: readonly ProjectionDefinition[];
  readonly reactors: readonly ReactorDefinition[];
  readonly commandMapping?: QueueMappingOptions;
}

/** The whole application: its buses, services and the API. */
export interface AppDefinition {
  /** Prefix of every physical name, so two apps can share an account. */
  readonly prefix: string;
  readonly buses: readonly BusDefinition[];
  readonly services: readonly ServiceDefinition[];
  /**
   * Module exporting the Hono app's Lambda handler. @default the entry the framework builds from
   * the services' declarations (shared/entries/api.ts)
   */
  readonly apiHandler?: string;
  /**
   * Module exporting the Lambda handler of the API's Connect and gRPC-Web routes
   * (`POST /{package.Service}/{Method}`, shared/api/rpc-app.ts), a function of its own so the
   * JSON API does not carry connect-es. @default the built entry (shared/entries/rpc.ts) if `rpc`
   */
  readonly rpcHandler?: string;
  /** Deploy the Connect and gRPC-Web routes (as the built entry, unless `rpcHandler`). @default false */
  readonly rpc?: boolean;
  /** Module of the relay (bus stream → bus topic) handler. @default the kit's (shared/handlers/relay.ts) */
  readonly relayHandler?: string;
  /** Module of the archiver (bus stream → S3 archive) handler. @default the kit's (shared/handlers/archiver.ts) */
  readonly archiverHandler?: string;
}

/**
 * The app as plain data (structured-cloneable, JSON-safe): what the plan is made from, without
 * the declared parts' functions and Protobuf descriptors (contracts, deciders, folds, reactions),
 * for a worker or a process that plans the app but runs none of its parts in place.
 */
export function topologyOf(app: AppDefinition): AppDefinition {
  const projection = (p: ProjectionDefinition) => {
    const { name, handler, events, key, queryable, warmUp, generations, mapping } = p;
    // A counter view keeps its mark: its entry is built for counters.
    const kind = "counters" in p ? { counters: {} } : {};
    return JSON.parse(JSON.stringify({ name, handler, events, key, queryable, warmUp, generations, mapping, ...kind }));
  };
  const reactor = ({ name, handler, events, sendsTo, mapping }: ReactorDefinition) =>
    JSON.parse(JSON.stringify({ name, handler, events, sendsTo, mapping }));
  return {
    ...app,
    services: app.services.map(({ contract: _contract, aggregate, projections, reactors, ...service }) => ({
      ...service,
      // The plan reads only that the aggregate is declared (its entries are built from its modules).
      ...(aggregate !== undefined && { aggregate: { declared: true } as unknown as AggregateDeclaration }),
      projections: projections.map(projection),
      reactors: reactors.map(reactor),
    })),
  };
}
