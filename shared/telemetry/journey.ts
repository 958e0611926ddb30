/**
 * A command's journey, read back: the hops its trace's spans recorded (accepted by the API →
 * queued → decided → appended → relayed → applied by each subscriber / reacted), in order, and
 * the commands it caused (a reactor's, linked by the "reacted" span they continue), with theirs.
 *
 * The command's trace id is on the API's record of it; the spans are in the journeys index
 * (written by shared/handlers/journey-indexer.ts). Both are named by the environment, as the API
 * reads them; the console reads them the same way.
 */
import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient } from "../aws/clients.ts";
import { envNames } from "../plan.ts";
import { type HopName, hopNames } from "./records.ts";

/** One hop of a journey. */
export interface JourneyHop {
  readonly name: HopName;
  /** The function or part that ran it. */
  readonly source: string;
  /** For "applied" and "reacted": the projection or reactor, `<service>.<name>`. */
  readonly subscriber?: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
}

/** A command and what became of it, hop by hop, and the commands it caused. */
export interface Journey {
  readonly commandId: string;
  /** The W3C trace id ("" for a command taken before tracing, or with telemetry off). */
  readonly traceId: string;
  readonly command: string;
  /** "pending" until decided; then "accepted", "rejected" or "conflicted". */
  readonly status: string;
  /** Sorted by `startedAt` (then by hop order). */
  readonly hops: readonly JourneyHop[];
  readonly caused: readonly Journey[];
}

/** A span of the journeys index, or a command's outcome (its name and status). */
export interface JourneySpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly kind: "span" | "outcome";
  readonly commandId: string;
  readonly parentSpanId?: string;
  readonly source?: string;
  readonly name?: string;
  readonly subscriber?: string;
  readonly startedAt?: string;
  readonly endedAt?: string;
  readonly command?: string;
  readonly status?: string;
}

/**
 * An item of the journeys index (key: trace id, span id): one span or outcome, or the spans of
 * one trace the indexer read in one batch (`kind` "spans", their trace id left out).
 */
export type JourneyItem =
  | (JourneySpan & { readonly expiresAt?: number })
  | {
      readonly traceId: string;
      readonly spanId: string;
      readonly kind: "spans";
      /** Their JSON (as the indexer writes them: one string attribute), or the list itself. */
      readonly spans: string | readonly Omit<JourneySpan, "traceId">[];
      /** When DynamoDB expires it (epoch seconds). */
      readonly expiresAt?: number;
    };

/** The spans of index items, one per span id (a span written twice is the same span). */
export function spansOf(items: readonly JourneyItem[]): JourneySpan[] {
  const spans = new Map<string, JourneySpan>();
  for (const item of items) {
    if (item.kind === "spans") {
      for (const span of packedSpans(item.spans)) spans.set(span.spanId, { ...span, traceId: item.traceId });
    } else spans.set(item.spanId, item);
  }
  return [...spans.values()];
}

/** The spans an index item packs (none if its JSON is damaged: a journey shows what it can). */
function packedSpans(
  packed: string | readonly Omit<JourneySpan, "traceId">[] | undefined,
): Omit<JourneySpan, "traceId">[] {
  if (typeof packed !== "string") return [...(packed ?? [])];
  try {
    const parsed: unknown = JSON.parse(packed);
    return Array.isArray(parsed) ? (parsed as Omit<JourneySpan, "traceId">[]) : [];
  } catch {
    return [];
  }
}

/** The key of a command's outcome in the journeys index (one per command and trace). */
export const outcomeItemKey = (commandId: string) => `outcome-${commandId}`;

/** The most spans one journey reads (a busy trace shared by many commands stops there). */
const maxItems = 5_000;
/** How deep caused commands are followed (a saga's steps, each one deeper). */
const maxDepth = 16;

/** The journey of a command the API took; undefined for an id it never took. */
export async function readJourney(commandId: string): Promise<Journey | undefined> {
  const commandsTable = process.env[envNames.apiCommandsTable];
  if (!commandsTable) throw new Error(`environment variable ${envNames.apiCommandsTable} is not set`);
  const found = await dynamoClient().send(new GetCommand({ TableName: commandsTable, Key: { id: commandId } }));
  const record = found.Item as
    | { readonly service: string; readonly command: string; readonly traceId?: string }
    | undefined;
  if (record === undefined) return undefined;
  const [status, items] = await Promise.all([
    outcomeStatus(record.service, commandId),
    record.traceId === undefined
      ? Promise.resolve([])
      : readTraceItems(process.env[envNames.journeyTable], record.traceId),
  ]);
  return buildJourney(commandId, record.traceId ?? "", { command: record.command, status }, items);
}

/**
 * The journey of `commandId` from its trace's items (pure): its own hops, and the commands whose
 * first span continues one of its spans, recursively.
 */
export function buildJourney(
  commandId: string,
  traceId: string,
  known: { readonly command: string; readonly status: string },
  items: readonly JourneyItem[],
): Journey {
  const all = spansOf(items);
  const spans = all.filter((i) => i.kind === "span");
  const outcomes = new Map(all.filter((i) => i.kind === "outcome").map((i) => [i.commandId, i]));
  const bySpan = new Map(spans.map((s) => [s.spanId, s]));
  const byCommand = new Map<string, JourneySpan[]>();
  for (const span of spans) {
    const list = byCommand.get(span.commandId);
    if (list === undefined) byCommand.set(span.commandId, [span]);
    else list.push(span);
  }
  // A command was caused by the command owning the span its earliest span continues.
  const causedBy = new Map<string, string[]>();
  for (const [id, own] of byCommand) {
    if (id === commandId) continue;
    const parents = own
      .map((s) => (s.parentSpanId === undefined ? undefined : bySpan.get(s.parentSpanId)?.commandId))
      .filter((p): p is string => p !== undefined && p !== id);
    const parent = parents[0];
    if (parent === undefined) continue;
    const list = causedBy.get(parent);
    if (list === undefined) causedBy.set(parent, [id]);
    else list.push(id);
  }
  const seen = new Set<string>();
  const build = (id: string, depth: number, head: { command: string; status: string }): Journey => {
    seen.add(id);
    const hops = (byCommand.get(id) ?? []).map(toHop).sort(byStart);
    const children = (causedBy.get(id) ?? []).filter((c) => !seen.has(c));
    const caused =
      depth >= maxDepth
        ? []
        : children
            .map((child) => {
              const outcome = outcomes.get(child);
              return build(child, depth + 1, {
                command: outcome?.command ?? "",
                status: outcome?.status ?? "pending",
              });
            })
            .sort((a, b) => (a.hops[0]?.startedAt ?? "").localeCompare(b.hops[0]?.startedAt ?? ""));
    return { commandId: id, traceId, command: head.command, status: head.status, hops, caused };
  };
  return build(commandId, 0, known);
}

function toHop(item: JourneySpan): JourneyHop {
  const startedAt = item.startedAt ?? "";
  const endedAt = item.endedAt ?? startedAt;
  return {
    name: (item.name ?? "accepted") as HopName,
    source: item.source ?? "",
    ...(item.subscriber ? { subscriber: item.subscriber } : {}),
    startedAt,
    endedAt,
    durationMs: Math.max(0, Date.parse(endedAt) - Date.parse(startedAt)) || 0,
  };
}

const hopOrder = new Map<string, number>(hopNames.map((name, index) => [name, index]));

function byStart(a: JourneyHop, b: JourneyHop): number {
  return (
    a.startedAt.localeCompare(b.startedAt) ||
    (hopOrder.get(a.name) ?? 0) - (hopOrder.get(b.name) ?? 0) ||
    (a.subscriber ?? "").localeCompare(b.subscriber ?? "")
  );
}

async function outcomeStatus(service: string, commandId: string): Promise<string> {
  const table = process.env[envNames.serviceOutcomesTable(service)];
  if (!table) return "pending";
  const found = await dynamoClient().send(new GetCommand({ TableName: table, Key: { id: commandId } }));
  return (found.Item as { status?: string } | undefined)?.status ?? "pending";
}

/** Every item of a trace in the journeys index `table` (none when there is no index), up to `maxItems`. */
export async function readTraceItems(table: string | undefined, traceId: string): Promise<JourneyItem[]> {
  if (!table) return [];
  const items: JourneyItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamoClient().send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "traceId = :trace",
        ExpressionAttributeValues: { ":trace": traceId },
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((page.Items ?? []) as JourneyItem[]));
    start = page.LastEvaluatedKey;
  } while (start !== undefined && items.length < maxItems);
  return items;
}
