/**
 * What the planners share while they build one application's plan: its names, the resources
 * planned so far (in the order they are planned: the templates and the local cloud follow it),
 * and how a queue, a table and a queue's event source are made.
 */
import type { QueueMappingOptions } from "../topology.ts";
import {
  defaultMapping,
  type EventSource,
  type Owner,
  type PlannedFunction,
  type PlannedQueue,
  type PlannedSubscription,
  type PlannedTable,
} from "./model.ts";

export interface PlanBuilder {
  /** The physical name of a logical id: `<prefix>-<id>`. */
  name(id: string): string;
  readonly queues: PlannedQueue[];
  readonly tables: PlannedTable[];
  readonly subscriptions: PlannedSubscription[];
  readonly functions: PlannedFunction[];
  /** Plans a queue (FIFO unless said otherwise) with its dead-letter queue. */
  queue(id: string, owner: Owner, options: QueueMappingOptions | undefined, fifo?: boolean): PlannedQueue;
  /** Plans a table keyed by one string attribute (and, if given, a string sort key and a TTL attribute). */
  table(
    id: string,
    owner: Owner,
    partitionKey?: string,
    options?: Pick<PlannedTable, "sortKey" | "timeToLiveAttribute">,
  ): PlannedTable;
  /** A function's event source on a planned queue. */
  sqsSource(queueId: string, options: QueueMappingOptions | undefined): EventSource;
}

export function planBuilder(prefix: string): PlanBuilder {
  const name = (id: string) => `${prefix}-${id}`;
  const queues: PlannedQueue[] = [];
  const tables: PlannedTable[] = [];
  return {
    name,
    queues,
    tables,
    subscriptions: [],
    functions: [],
    queue(id, owner, options, fifo = true) {
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
    },
    table(id, owner, partitionKey = "id", options = {}) {
      const planned: PlannedTable = { id, name: name(id), partitionKey, ...options, owner };
      tables.push(planned);
      return planned;
    },
    sqsSource: (queueId, options) => ({
      kind: "sqs",
      queueId,
      batchSize: Math.min(options?.batchSize ?? defaultMapping.batchSize, 10),
      maxConcurrency: options?.maxConcurrency ?? defaultMapping.maxConcurrency,
    }),
  };
}
