/**
 * A bus's part of the plan (law K: each bus its own). An events bus: its stream, FIFO topic and
 * archive, its relay (stream → topic, arbitrating, invariant 2) and its archiver (stream → S3,
 * invariant 4), each with its failure queue. A telemetry bus: its stream, its columnar store
 * (Parquet files, a Glue table) and its journey indexer with the journeys table.
 */
import type { AppDefinition, BusDefinition, StreamReadMode } from "../topology.ts";
import type { PlanBuilder } from "./builder.ts";
import {
  envNames,
  ids,
  type Owner,
  type PlannedBucket,
  type PlannedEntry,
  type PlannedStream,
  type PlannedTelemetryStore,
  type PlannedTopic,
  type ResourceRef,
  streamMaxRecordAgeSeconds,
  streamRetryAttempts,
  telemetryRetentionDays,
} from "./model.ts";

/** Whether a bus carries the system's telemetry rather than the domain's events. */
export function isTelemetryBus(bus: BusDefinition): boolean {
  return bus.kind === "telemetry";
}

/** The buses that carry events: arbitrated, fanned out, archived. */
function eventBuses(app: AppDefinition): BusDefinition[] {
  return app.buses.filter((bus) => !isTelemetryBus(bus));
}

/** The buses' streams; the events buses' topics and archives; the telemetry bus's store. */
export function planBusResources(b: PlanBuilder, app: AppDefinition) {
  const streams = app.buses.map(
    (bus): PlannedStream => ({
      bus: bus.name,
      kind: bus.kind ?? "events",
      name: b.name(bus.name),
      shards: bus.shards ?? 2,
      retentionHours: bus.retentionHours ?? 24,
    }),
  );
  const topics = eventBuses(app).map((bus): PlannedTopic => ({ bus: bus.name, name: `${b.name(bus.name)}.fifo` }));
  const buckets = eventBuses(app).map(
    (bus): PlannedBucket => ({
      bus: bus.name,
      name: `${b.name(bus.name)}-archive`,
      owner: { kind: "bus", name: bus.name },
    }),
  );
  const telemetry = app.buses.filter(isTelemetryBus).map(
    (bus): PlannedTelemetryStore => ({
      bus: bus.name,
      streamName: b.name(bus.name),
      bucket: `${b.name(bus.name)}-records`,
      prefix: "records/",
      deliveryStream: `${b.name(bus.name)}-delivery`,
      // Glue names: lower case, underscores.
      database: b.name(bus.name).replaceAll("-", "_"),
      table: "records",
      workGroup: `${b.name(bus.name)}-telemetry`,
      retentionDays: bus.telemetryRetentionDays ?? telemetryRetentionDays,
      owner: { kind: "bus", name: bus.name },
    }),
  );

  return { streams, topics, buckets, telemetry };
}

/** Every events bus's relay, with its arbitration table and failure queue. */
export function planRelays(b: PlanBuilder, app: AppDefinition): void {
  for (const bus of eventBuses(app)) {
    const owner: Owner = { kind: "bus", name: bus.name };
    const arbitration = b.table(ids.arbitrationTable(bus.name), owner);
    // Standard: Lambda's on-failure destination for a stream cannot be a FIFO queue.
    const failures = b.queue(ids.relayDeadLetterQueue(bus.name), owner, undefined, false);
    b.functions.push({
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
        ...streamReader(bus.relayReadsBy ?? "polling", b.name(`${bus.name}-relay`)),
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
}

/** Every events bus's archiver, with its failure queue. */
export function planArchivers(b: PlanBuilder, app: AppDefinition): void {
  for (const bus of eventBuses(app)) {
    const owner: Owner = { kind: "bus", name: bus.name };
    // Standard, as the relay's: an on-failure destination cannot be FIFO.
    const failures = b.queue(ids.archiverFailureQueue(bus.name), owner, undefined, false);
    b.functions.push({
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
}

/**
 * The telemetry bus's journey indexer and its journeys table: span records from the stream into
 * items keyed by trace id and span id (shared/handlers/journey-indexer.ts), idempotent, kept 7
 * days, read by the API's trace route.
 * Telemetry is not the log of record: a batch that keeps failing is given up on after a few
 * tries (into the failure queue, whose alarm fires), so the indexer never falls hours behind.
 */
export function planJourneys(b: PlanBuilder, app: AppDefinition): void {
  for (const bus of app.buses.filter(isTelemetryBus)) {
    const owner: Owner = { kind: "bus", name: bus.name };
    const journeys = b.table(ids.journeysTable(), owner, "traceId", {
      sortKey: "spanId",
      timeToLiveAttribute: "expiresAt",
    });
    const failures = b.queue(ids.journeyIndexerFailureQueue(bus.name), owner, undefined, false);
    b.functions.push({
      id: ids.journeyIndexer(bus.name),
      role: "journeys",
      owner,
      handler: "shared/handlers/journey-indexer.ts",
      source: {
        kind: "kinesis",
        bus: bus.name,
        batchSize: 500,
        batchWindowSeconds: 1,
        startingPosition: "TRIM_HORIZON",
        bisectBatchOnError: true,
        maxRetryAttempts: 10,
        maxRecordAgeSeconds: streamMaxRecordAgeSeconds(bus.retentionHours ?? 24),
        onFailureQueueId: failures.id,
        readsBy: "polling",
        parallelizationFactor: 1,
      },
      env: {
        [envNames.bus]: { kind: "value", value: bus.name },
        [envNames.journeyTable]: { kind: "table", id: journeys.id, access: "readWrite" },
      },
    });
  }
}

/**
 * Every function but the journey indexer (which reads the telemetry stream: emitting to it would
 * feed itself) may put records on the telemetry bus's stream (shared/telemetry), and the API reads
 * the journeys index. Without a telemetry bus, nothing changes: the emitter is off.
 */
export function planTelemetryAccess(b: PlanBuilder, app: AppDefinition): void {
  const bus = app.buses.find(isTelemetryBus);
  if (bus === undefined) return;
  for (const [i, fn] of b.functions.entries()) {
    if (fn.role === "journeys") continue;
    const env: Record<string, ResourceRef> = {
      ...fn.env,
      [envNames.telemetryStream]: { kind: "stream", bus: bus.name, access: "write" },
    };
    if (fn.role === "api") env[envNames.journeyTable] = { kind: "table", id: ids.journeysTable(), access: "read" };
    b.functions[i] = { ...fn, env };
  }
}

/** The module a bus function runs: the app's own, or the kit's handler as a built entry. */
function busCode(handler: string | undefined, kind: "relay" | "archiver"): { handler: string; entry?: PlannedEntry } {
  if (handler !== undefined) return { handler };
  return { handler: `shared/handlers/${kind}.ts`, entry: { kind, service: "" } };
}

/** How a stream mapping reads: by polling, or through the named enhanced fan-out consumer. */
function streamReader(
  readsBy: StreamReadMode,
  consumerName: string,
): { readonly readsBy: StreamReadMode; readonly consumerName?: string } {
  return readsBy === "enhanced-fan-out" ? { readsBy, consumerName } : { readsBy };
}
