/**
 * Where a command's time goes: per-hop timestamps, from what the system already keeps, read
 * by the bench without touching the framework.
 *
 * - API received: the command's `receivedAt` (the API's commands table; also every event's `time`).
 * - decided: the `updatedAt` of the outcome item while it is `pending` (written after the decision,
 *   just before the append), caught by polling the outcomes table — a transient state, so only
 *   for traced commands, and missed when it lasts less than a poll.
 * - appended: the Kinesis record's ApproximateArrivalTimestamp, as the archive keeps it (`arrivedAt`).
 * - relayed: when SNS put the event into a tap queue the bench subscribes to the bus topic for the
 *   trace (its SentTimestamp): one more subscriber like any projection, removed afterwards.
 * - applied, per subscriber: the first poll of the subscriber's table that shows the event.
 * - outcome: the final outcome's `updatedAt` (the command handler saw its commit in its state).
 * - shown: the first poll of the balances view at or past the command's version (the Tracker).
 */

import { setTimeout as wait } from "node:timers/promises";
import { SubscribeCommand, UnsubscribeCommand } from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from "@aws-sdk/client-sqs";
import { listArchive, readObject } from "../shared/archive/reader.ts";
import type { ProvisionedResources } from "../shared/local-cloud/provision.ts";
import { type AppPlan, envNames, ids, projectionGenerations } from "../shared/plan.ts";
import type { AppDefinition } from "../shared/topology.ts";
import type { BenchAws } from "./aws.ts";
import { batchGetById, type CommandRecord, latencyOf, type Tracker } from "./load.ts";

/** Waits `ms`, or not at all when the moment has passed already (a negative delay warns). */
const sleep = (ms: number) => wait(Math.max(0, ms));

/** How the bench tells that a subscriber applied an event, from its table. */
export type ProbeKind =
  /** A service's state: item `a#<aggregate>` at or past the event's version. */
  | "state"
  /** A view with one item per account (`id` = account id) at or past the event's version. */
  | "aggregate"
  /** A counter view (shared/handlers/counters.ts): a shard `<date>#<n>` whose `applied` holds the event id. */
  | "counter";

export interface Subscriber {
  readonly fn: string;
  readonly table: string;
  readonly kind: ProbeKind;
}

/** The running subscribers of `eventType` and how to probe each; the others with the reason. */
export function subscribersOf(
  app: AppDefinition,
  plan: AppPlan,
  resources: ProvisionedResources,
  running: readonly string[],
  eventType: string,
): { probes: Subscriber[]; skipped: { fn: string; reason: string }[] } {
  const probes: Subscriber[] = [];
  const skipped: { fn: string; reason: string }[] = [];
  for (const subscription of plan.subscriptions.filter((s) => s.eventTypes.includes(eventType))) {
    const fn = plan.functions.find((f) => f.source.kind === "sqs" && f.source.queueId === subscription.queueId);
    if (fn === undefined) continue;
    if (!running.includes(fn.id)) {
      skipped.push({ fn: fn.id, reason: fn.startsDetached ? "detached (a warm-up projection)" : "not running" });
      continue;
    }
    const tableRef = Object.values(fn.env).find((r) => r.kind === "table" && r.access === "readWrite");
    const tableId = tableRef?.kind === "table" ? tableRef.id : undefined;
    const table = tableId === undefined ? undefined : resources.tableNames.get(tableId);
    let kind: ProbeKind | undefined;
    for (const service of app.services) {
      if (ids.stateTable(service.name) === tableId) kind = "state";
      for (const g of service.projections.flatMap(projectionGenerations)) {
        if (ids.projectionTable(service.name, g.name) !== tableId) continue;
        if (g.projection.key === "accountId") kind = "aggregate";
        if (g.projection.key === "date") kind = "counter";
      }
    }
    if (fn.role !== "projection" || table === undefined || kind === undefined) {
      skipped.push({ fn: fn.id, reason: `no probe for a ${fn.role} (its table cannot say when it applied)` });
      continue;
    }
    probes.push({ fn: fn.id, table, kind });
  }
  return { probes, skipped };
}

/** The timestamps of one traced command (epoch ms). */
export interface HopTrace {
  readonly commandId: string;
  readonly accountId: string;
  readonly sentAt: number;
  version?: number;
  eventId?: string;
  date?: string;
  decidedAt?: number;
  outcomeAt?: number;
  relayedAt?: number;
  readonly applied: Record<string, number>;
}

/**
 * Polls, for the commands of one run (`run`), the outcomes table (to catch the pending outcome)
 * and every subscriber's table; reads a tap queue subscribed to the bus topic for the relay's
 * publish time. Started before the run, stopped after it.
 */
export class HopProbe {
  readonly traces = new Map<string, HopTrace>();
  private running = false;
  private loops: Promise<void>[] = [];
  private tap: { queueUrl: string; subscriptionArn: string } | undefined;
  private readonly counterShards = new Map<string, number>();
  /** Polls made and their total time: the resolution the applied times really had. */
  readonly polls = { count: 0, ms: 0 };

  private readonly aws: BenchAws;
  private readonly tracker: Tracker;
  private readonly run: string;
  private readonly outcomesTable: string;
  readonly subscribers: readonly Subscriber[];
  private readonly pollMs: number;

  constructor(options: {
    aws: BenchAws;
    tracker: Tracker;
    run: string;
    outcomesTable: string;
    subscribers: readonly Subscriber[];
    pollMs: number;
  }) {
    this.aws = options.aws;
    this.tracker = options.tracker;
    this.run = options.run;
    this.outcomesTable = options.outcomesTable;
    this.subscribers = options.subscribers;
    this.pollMs = options.pollMs;
  }

  /** Creates and subscribes the tap queue (FundsDeposited only, raw delivery), starts polling. */
  async start(topicArn: string, queueName: string): Promise<void> {
    const queue = await this.aws.sqs.send(
      new CreateQueueCommand({
        QueueName: queueName,
        Attributes: { FifoQueue: "true", ContentBasedDeduplication: "false" },
      }),
    );
    const queueUrl = queue.QueueUrl as string;
    const attributes = await this.aws.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
    );
    const subscription = await this.aws.sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: "sqs",
        Endpoint: attributes.Attributes?.QueueArn,
        ReturnSubscriptionArn: true,
        Attributes: {
          RawMessageDelivery: "true",
          FilterPolicyScope: "MessageAttributes",
          FilterPolicy: JSON.stringify({ type: ["FundsDeposited"] }),
        },
      }),
    );
    this.tap = { queueUrl, subscriptionArn: subscription.SubscriptionArn as string };
    this.running = true;
    this.loops.push(this.pollLoop(), this.tapLoop(queueUrl));
  }

  /** True when every traced command has all its timestamps (or `deadline` passed). */
  async settle(deadline: number): Promise<void> {
    while (Date.now() < deadline && [...this.traces.values()].some((t) => !this.complete(t))) await sleep(50);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    if (this.tap !== undefined) {
      await this.aws.sns.send(new UnsubscribeCommand({ SubscriptionArn: this.tap.subscriptionArn })).catch(() => {});
      await this.aws.sqs.send(new DeleteQueueCommand({ QueueUrl: this.tap.queueUrl })).catch(() => {});
    }
  }

  private complete(t: HopTrace): boolean {
    return (
      t.outcomeAt !== undefined &&
      t.relayedAt !== undefined &&
      this.subscribers.every((s) => t.applied[s.fn] !== undefined)
    );
  }

  private adopt(): void {
    for (const r of this.tracker.records()) {
      if (r.run !== this.run || this.traces.has(r.commandId)) continue;
      this.traces.set(r.commandId, {
        commandId: r.commandId,
        accountId: r.accountId,
        sentAt: r.sentAt,
        date: new Date(r.sentAt).toISOString().slice(0, 10),
        applied: {},
      });
    }
  }

  private async pollLoop(): Promise<void> {
    while (this.running) {
      const started = Date.now();
      this.adopt();
      try {
        await this.poll();
      } catch (error) {
        console.error("bench: a trace poll failed:", (error as Error).message);
      }
      await sleep(this.pollMs - (Date.now() - started));
      this.polls.count += 1;
      this.polls.ms += Date.now() - started;
    }
  }

  private async poll(): Promise<void> {
    const open = [...this.traces.values()].filter((t) => !this.complete(t));
    const needOutcome = open.filter((t) => t.outcomeAt === undefined);
    const outcomes = await batchGetById(
      this.aws,
      this.outcomesTable,
      needOutcome.map((t) => t.commandId),
      "id, status, updatedAt, commit, events",
    );
    for (const t of needOutcome) {
      const o = outcomes.get(t.commandId);
      if (o === undefined) continue;
      const at = Date.parse(String(o.updatedAt));
      if (o.status === "pending") {
        t.decidedAt ??= at;
        const event = (o.commit as { events?: { id: string; aggregateversion: number; time: string }[] } | undefined)
          ?.events?.[0];
        if (event !== undefined) {
          t.eventId = event.id;
          t.version = event.aggregateversion;
          t.date = event.time.slice(0, 10);
        }
      } else {
        t.outcomeAt = at;
        const event = (o.events as { id: string; version: number }[] | undefined)?.[0];
        if (event !== undefined) {
          t.eventId = event.id;
          t.version = event.version;
        }
      }
    }
    await Promise.all(this.subscribers.map((s) => this.probe(s, open)));
  }

  private async probe(s: Subscriber, open: readonly HopTrace[]): Promise<void> {
    const waiting = open.filter((t) => t.applied[s.fn] === undefined && t.version !== undefined);
    if (waiting.length === 0) return;
    if (s.kind === "counter") {
      // A new event is counted into the open shard: the highest that exists, or the next one.
      for (const date of new Set(waiting.map((t) => t.date as string))) {
        const top = this.counterShards.get(date) ?? 0;
        const items = await batchGetById(this.aws, s.table, [`${date}#${top}`, `${date}#${top + 1}`], "id, applied");
        const at = Date.now();
        if (items.has(`${date}#${top + 1}`)) this.counterShards.set(date, top + 1);
        const applied = new Set<string>();
        for (const item of items.values()) {
          for (const e of (item.applied as Set<string> | undefined) ?? []) applied.add(e);
        }
        for (const t of waiting) {
          if (t.date === date && t.eventId !== undefined && applied.has(t.eventId)) t.applied[s.fn] = at;
        }
      }
      return;
    }
    const key = (t: HopTrace) => (s.kind === "state" ? `a#${t.accountId}` : t.accountId);
    const items = await batchGetById(this.aws, s.table, [...new Set(waiting.map(key))], "id, version");
    const at = Date.now();
    for (const t of waiting) {
      if (Number(items.get(key(t))?.version ?? 0) >= (t.version as number)) t.applied[s.fn] = at;
    }
  }

  private async tapLoop(queueUrl: string): Promise<void> {
    while (this.running) {
      try {
        const received = await this.aws.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ["SentTimestamp"],
          }),
        );
        const messages = received.Messages ?? [];
        for (const m of messages) {
          const sent = Number(m.Attributes?.SentTimestamp);
          let commandId: string | undefined;
          try {
            commandId = (JSON.parse(m.Body ?? "{}") as { commandid?: string }).commandid;
          } catch {
            // not an event: nothing to time
          }
          const t = commandId === undefined ? undefined : this.traces.get(commandId);
          if (t !== undefined && Number.isFinite(sent)) t.relayedAt = Math.min(t.relayedAt ?? sent, sent);
        }
        if (messages.length > 0) {
          await this.aws.sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
            }),
          );
        }
      } catch (error) {
        if (this.running) console.error("bench: the tap queue failed:", (error as Error).message);
        await sleep(200);
      }
    }
  }
}

/** What the system recorded for each command, read once after the runs. */
export interface Recorded {
  /** The API's receivedAt. */
  readonly receivedAt?: number;
  /** The last commit's arrival on the stream (its ApproximateArrivalTimestamp, from the archive). */
  readonly appendedAt?: number;
  /** The final outcome's updatedAt. */
  readonly outcomeAt?: number;
}

/**
 * Reads the API's command records, the final outcomes and the archive for `records`' commands.
 * The archive must have passed the runs (the caller waits for its watermark).
 */
export async function collectRecorded(
  aws: BenchAws,
  bucket: string,
  bus: string,
  service: string,
  records: readonly CommandRecord[],
): Promise<Map<string, Recorded>> {
  const commandIds = records.map((r) => r.commandId);
  const outcomesTable = process.env[envNames.serviceOutcomesTable(service)] as string;
  const [api, outcomes] = await Promise.all([
    batchGetById(aws, process.env[envNames.apiCommandsTable] as string, commandIds, "id, receivedAt"),
    batchGetById(aws, outcomesTable, commandIds, "id, updatedAt, status"),
  ]);
  // A command shown in the view may still be pending: its handler waits for the commit to show in
  // its own state. Give those a few seconds to settle (bounded).
  for (let i = 0; i < 50; i++) {
    const pending = records
      .filter((r) => r.status === "accepted" && outcomes.get(r.commandId)?.status !== "accepted")
      .map((r) => r.commandId);
    if (pending.length === 0) break;
    await sleep(200);
    for (const [id, item] of await batchGetById(aws, outcomesTable, pending, "id, updatedAt, status")) {
      outcomes.set(id, item);
    }
  }
  const wanted = new Set(commandIds);
  const appended = new Map<string, number>();
  for (const { objects } of await listArchive(bucket, bus)) {
    for (const object of objects) {
      for (const record of await readObject(bucket, object.key)) {
        const commandId = record.commit?.commandId;
        if (commandId === undefined || !wanted.has(commandId)) continue;
        const at = Date.parse(record.arrivedAt);
        appended.set(commandId, Math.max(appended.get(commandId) ?? 0, at));
      }
    }
  }
  const out = new Map<string, Recorded>();
  for (const id of commandIds) {
    const receivedAt = api.get(id)?.receivedAt;
    const outcome = outcomes.get(id);
    out.set(id, {
      receivedAt: receivedAt === undefined ? undefined : Date.parse(String(receivedAt)),
      appendedAt: appended.get(id),
      outcomeAt:
        outcome === undefined || outcome.status === "pending" ? undefined : Date.parse(String(outcome.updatedAt)),
    });
  }
  return out;
}

export interface Segment {
  readonly from: string;
  readonly to: string;
  /** Where the two timestamps come from. */
  readonly source: string;
  readonly p50: number;
  readonly p99: number;
  readonly samples: number;
}

function segment(from: string, to: string, source: string, values: readonly (number | undefined)[]): Segment {
  const ms = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  const l = latencyOf(ms.map((v) => ({ ms: v, censored: false })));
  return { from, to, source, p50: l.p50, p99: l.p99, samples: l.samples };
}

const minus = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? undefined : a - b;

/** A run's accepted commands split where the system's own records allow: p50/p99 of each part. */
export function runSegments(records: readonly CommandRecord[], recorded: ReadonlyMap<string, Recorded>): Segment[] {
  const accepted = records.filter((r) => r.status === "accepted" && r.shownAt !== undefined);
  const get = (r: CommandRecord) => recorded.get(r.commandId) ?? {};
  return [
    segment(
      "sent",
      "API received",
      "bench clock → receivedAt",
      accepted.map((r) => minus(get(r).receivedAt, r.sentAt)),
    ),
    segment(
      "API received",
      "appended",
      "receivedAt → ApproximateArrivalTimestamp",
      accepted.map((r) => minus(get(r).appendedAt, get(r).receivedAt)),
    ),
    segment(
      "appended",
      "view shown",
      "ApproximateArrivalTimestamp → balances poll",
      accepted.map((r) => minus(r.shownAt, get(r).appendedAt)),
    ),
    segment(
      "appended",
      "outcome",
      "ApproximateArrivalTimestamp → outcome updatedAt",
      accepted.map((r) => minus(get(r).outcomeAt, get(r).appendedAt)),
    ),
  ];
}

/** The traced commands' hops, each with its p50/p99 and the number of commands it was seen for. */
export function traceSegments(
  traces: readonly HopTrace[],
  records: ReadonlyMap<string, CommandRecord>,
  recorded: ReadonlyMap<string, Recorded>,
  subscribers: readonly Subscriber[],
): Segment[] {
  const rows = traces.map((t) => ({ t, r: recorded.get(t.commandId) ?? {}, c: records.get(t.commandId) }));
  return [
    segment(
      "sent",
      "API received",
      "bench clock → receivedAt",
      rows.map(({ t, r }) => minus(r.receivedAt, t.sentAt)),
    ),
    segment(
      "API received",
      "decided",
      "receivedAt → pending outcome's updatedAt (queue, read state, decide)",
      rows.map(({ t, r }) => minus(t.decidedAt, r.receivedAt)),
    ),
    segment(
      "decided",
      "appended",
      "pending outcome's updatedAt → ApproximateArrivalTimestamp (PutRecord)",
      rows.map(({ t, r }) => minus(r.appendedAt, t.decidedAt)),
    ),
    segment(
      "appended",
      "relayed",
      "ApproximateArrivalTimestamp → tap queue's SentTimestamp (relay poll, arbitration, PublishBatch)",
      rows.map(({ t, r }) => minus(t.relayedAt, r.appendedAt)),
    ),
    ...subscribers.map((s) =>
      segment(
        "relayed",
        `applied by ${s.fn}`,
        `tap queue's SentTimestamp → first poll of its table showing the event`,
        rows.map(({ t }) => minus(t.applied[s.fn], t.relayedAt)),
      ),
    ),
    segment(
      "appended",
      "outcome",
      "ApproximateArrivalTimestamp → final outcome's updatedAt (the handler's commit wait)",
      rows.map(({ t, r }) => minus(t.outcomeAt ?? r.outcomeAt, r.appendedAt)),
    ),
    segment(
      "sent",
      "view shown",
      "bench clock → balances poll (end to end)",
      rows.map(({ t, c }) => minus(c?.shownAt, t.sentAt)),
    ),
  ];
}
