/**
 * The console's charts on AWS: one `GetMetricData` call over the last minutes at a one-minute
 * period, for every bus (Kinesis `IncomingRecords`; the relay's and the archiver's Lambda
 * `IteratorAge`) and every queue (SQS depth, visible and in flight). Building the queries and
 * turning the answer into the console's samples are pure functions; only `readMetrics` talks
 * to CloudWatch.
 */
import { GetMetricDataCommand, type MetricDataQuery } from "@aws-sdk/client-cloudwatch";
import { cloudWatchClient } from "../aws/clients.ts";
import type { AppPlan } from "../plan.ts";
import type { DeployedApp } from "./aws-discovery.ts";
import type { Sample } from "./source.ts";

export interface MetricQuery {
  /** CloudWatch's query id: `^[a-z][a-zA-Z0-9_]*$`. */
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly stat: "Sum" | "Maximum";
}

/** What each query measures, so the answer can be put back together. */
export type MetricMeaning =
  | { readonly kind: "incoming"; readonly bus: string }
  | { readonly kind: "iterator-age"; readonly bus: string; readonly reader: "relay" | "archiver" }
  | { readonly kind: "queue"; readonly projection: string; readonly state: "visible" | "in-flight" }
  | { readonly kind: "dead-letters"; readonly queue: string };

export interface MetricLayout {
  readonly queries: readonly MetricQuery[];
  readonly meaning: ReadonlyMap<string, MetricMeaning>;
}

export type MetricPoints = ReadonlyMap<string, readonly { readonly t: number; readonly value: number }[]>;

/** The queue name in a queue URL (`…/<account>/<name>`), CloudWatch's `QueueName` dimension. */
const queueNameOf = (url: string) => new URL(url).pathname.split("/").filter(Boolean).at(-1) ?? url;

/**
 * The queries of the console's charts for a deployed app. `projections` maps each projection's
 * name to its queue id (its lag is its queue's depth).
 */
export function consoleMetricQueries(
  plan: AppPlan,
  deployed: DeployedApp,
  projections: readonly { readonly name: string; readonly queueId: string }[],
): MetricLayout {
  const queries: MetricQuery[] = [];
  const meaning = new Map<string, MetricMeaning>();
  const add = (query: Omit<MetricQuery, "id">, means: MetricMeaning) => {
    const id = `m${queries.length}`;
    queries.push({ id, ...query });
    meaning.set(id, means);
  };
  for (const [bus, stream] of deployed.resources.streamNames) {
    add(
      { namespace: "AWS/Kinesis", name: "IncomingRecords", dimensions: { StreamName: stream }, stat: "Sum" },
      {
        kind: "incoming",
        bus,
      },
    );
    // The telemetry bus (law K) has no relay or archiver: its journey indexer stands for the
    // relay, and its delivery stream to the columnar store for the archiver (Firehose's own age).
    const store = plan.telemetry.find((t) => t.bus === bus);
    if (store !== undefined) {
      add(
        {
          namespace: "AWS/Firehose",
          name: "KinesisMillisBehindLatest",
          dimensions: { DeliveryStreamName: store.deliveryStream },
          stat: "Maximum",
        },
        { kind: "iterator-age", bus, reader: "archiver" },
      );
    }
    for (const reader of ["relay", "archiver"] as const) {
      const role = store !== undefined && reader === "relay" ? "journeys" : reader;
      const fn = plan.functions.find((f) => f.role === role && f.source.kind === "kinesis" && f.source.bus === bus);
      const deployedFn = fn && deployed.functions.get(fn.id);
      if (deployedFn === undefined) continue;
      add(
        {
          namespace: "AWS/Lambda",
          name: "IteratorAge",
          dimensions: { FunctionName: deployedFn.name },
          stat: "Maximum",
        },
        { kind: "iterator-age", bus, reader },
      );
    }
  }
  for (const projection of projections) {
    const url = deployed.resources.queueUrls.get(projection.queueId);
    if (url === undefined) continue;
    const QueueName = queueNameOf(url);
    add(
      { namespace: "AWS/SQS", name: "ApproximateNumberOfMessagesVisible", dimensions: { QueueName }, stat: "Maximum" },
      { kind: "queue", projection: projection.name, state: "visible" },
    );
    add(
      {
        namespace: "AWS/SQS",
        name: "ApproximateNumberOfMessagesNotVisible",
        dimensions: { QueueName },
        stat: "Maximum",
      },
      { kind: "queue", projection: projection.name, state: "in-flight" },
    );
  }
  for (const url of deployed.resources.deadLetterQueueUrls.values()) {
    const QueueName = queueNameOf(url);
    add(
      { namespace: "AWS/SQS", name: "ApproximateNumberOfMessagesVisible", dimensions: { QueueName }, stat: "Maximum" },
      { kind: "dead-letters", queue: QueueName },
    );
  }
  return { queries, meaning };
}

/** CloudWatch takes at most 500 queries a call. */
const queriesPerCall = 500;

/** Every query's points in [start, end], oldest first. */
export async function readMetrics(
  queries: readonly MetricQuery[],
  range: { readonly start: Date; readonly end: Date; readonly periodSeconds: number },
): Promise<MetricPoints> {
  const points = new Map<string, { t: number; value: number }[]>();
  for (let i = 0; i < queries.length; i += queriesPerCall) {
    const batch: MetricDataQuery[] = queries.slice(i, i + queriesPerCall).map((q) => ({
      Id: q.id,
      MetricStat: {
        Metric: {
          Namespace: q.namespace,
          MetricName: q.name,
          Dimensions: Object.entries(q.dimensions).map(([Name, Value]) => ({ Name, Value })),
        },
        Period: range.periodSeconds,
        Stat: q.stat,
      },
      ReturnData: true,
    }));
    let token: string | undefined;
    do {
      const page = await cloudWatchClient().send(
        new GetMetricDataCommand({
          MetricDataQueries: batch,
          StartTime: range.start,
          EndTime: range.end,
          ScanBy: "TimestampAscending",
          NextToken: token,
        }),
      );
      for (const result of page.MetricDataResults ?? []) {
        if (result.Id === undefined) continue;
        const list = points.get(result.Id) ?? [];
        const times = result.Timestamps ?? [];
        const values = result.Values ?? [];
        for (let k = 0; k < Math.min(times.length, values.length); k++) {
          list.push({ t: (times[k] as Date).getTime(), value: values[k] as number });
        }
        points.set(result.Id, list);
      }
      token = page.NextToken;
    } while (token !== undefined);
  }
  for (const list of points.values()) list.sort((a, b) => a.t - b.t);
  return points;
}

/**
 * The console's samples from CloudWatch's points: one per period that has any point. A bus's
 * rate is its `IncomingRecords` sum over the period; its lags are iterator ages in ms (the
 * archive's lag is the archiver's). A metric with no point in a period (an idle reader sends
 * none) counts as 0 there.
 */
export function samplesFromMetrics(layout: MetricLayout, points: MetricPoints, periodSeconds: number): Sample[] {
  const times = new Set<number>();
  for (const list of points.values()) for (const p of list) times.add(p.t);
  const buses = new Set<string>();
  const projections = new Set<string>();
  for (const means of layout.meaning.values()) {
    if (means.kind === "incoming" || means.kind === "iterator-age") buses.add(means.bus);
    if (means.kind === "queue") projections.add(means.projection);
  }
  const valueAt = new Map<string, Map<number, number>>();
  for (const [id, list] of points) valueAt.set(id, new Map(list.map((p) => [p.t, p.value])));

  return [...times]
    .sort((a, b) => a - b)
    .map((t): Sample => {
      const bus = new Map(
        [...buses].map((b) => [b, { recordsPerSecond: 0, relayLag: 0, archiverLag: 0, archiveLag: 0 }]),
      );
      const depth = new Map([...projections].map((p) => [p, 0]));
      let deadLetters = 0;
      for (const [id, means] of layout.meaning) {
        const value = valueAt.get(id)?.get(t) ?? 0;
        if (means.kind === "incoming") {
          const b = bus.get(means.bus);
          if (b) b.recordsPerSecond = value / periodSeconds;
        } else if (means.kind === "iterator-age") {
          const b = bus.get(means.bus);
          if (b && means.reader === "relay") b.relayLag = value;
          if (b && means.reader === "archiver") {
            b.archiverLag = value;
            b.archiveLag = value;
          }
        } else if (means.kind === "queue") {
          depth.set(means.projection, (depth.get(means.projection) ?? 0) + value);
        } else {
          deadLetters += value;
        }
      }
      return {
        t,
        buses: Object.fromEntries(bus),
        projections: Object.fromEntries(depth),
        deadLetters,
        lagUnit: "ms",
      };
    });
}

/** A reader's newest iterator age (ms) among `points` no older than `maxAgeMs`, or 0 (idle: caught up). */
export function latestIteratorAge(
  layout: MetricLayout,
  points: MetricPoints,
  bus: string,
  reader: "relay" | "archiver",
  now: number,
  maxAgeMs: number,
): number {
  for (const [id, means] of layout.meaning) {
    if (means.kind !== "iterator-age" || means.bus !== bus || means.reader !== reader) continue;
    const newest = points.get(id)?.at(-1);
    return newest !== undefined && now - newest.t <= maxAgeMs ? newest.value : 0;
  }
  return 0;
}
