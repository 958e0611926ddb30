/**
 * A bus's part of the plan (law K: each bus its own): its stream, FIFO topic and archive, its
 * relay (stream → topic, arbitrating, invariant 2) and its archiver (stream → S3, invariant 4),
 * each with its failure queue.
 */
import type { AppDefinition, StreamReadMode } from "../topology.ts";
import type { PlanBuilder } from "./builder.ts";
import {
  envNames,
  ids,
  type Owner,
  type PlannedBucket,
  type PlannedEntry,
  type PlannedStream,
  type PlannedTopic,
  streamMaxRecordAgeSeconds,
  streamRetryAttempts,
} from "./model.ts";

/** The buses' streams, topics and archives. */
export function planBusResources(b: PlanBuilder, app: AppDefinition) {
  const streams = app.buses.map(
    (bus): PlannedStream => ({
      bus: bus.name,
      name: b.name(bus.name),
      shards: bus.shards ?? 2,
      retentionHours: bus.retentionHours ?? 24,
    }),
  );
  const topics = app.buses.map((bus): PlannedTopic => ({ bus: bus.name, name: `${b.name(bus.name)}.fifo` }));
  const buckets = app.buses.map(
    (bus): PlannedBucket => ({
      bus: bus.name,
      name: `${b.name(bus.name)}-archive`,
      owner: { kind: "bus", name: bus.name },
    }),
  );

  return { streams, topics, buckets };
}

/** Every bus's relay, with its arbitration table and failure queue. */
export function planRelays(b: PlanBuilder, app: AppDefinition): void {
  for (const bus of app.buses) {
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

/** Every bus's archiver, with its failure queue. */
export function planArchivers(b: PlanBuilder, app: AppDefinition): void {
  for (const bus of app.buses) {
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
