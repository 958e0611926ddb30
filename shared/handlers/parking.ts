/**
 * Sequenced parking: a projection's poison events, held in order in the projection's own table.
 *
 * A FIFO queue's own redrive cannot keep an aggregate's order: once a failing message moves to
 * the dead-letter queue, the next message of its group is delivered and applied over the gap.
 * So when an event keeps failing, the projection runtime parks it instead: it records the event
 * (with the reason and the receive count) under `parked#<group>` in the projection's table and
 * acknowledges the message. Every later event of that group is appended behind it instead of
 * being applied; other groups flow on. A redrive (`canon dlq redrive`) sends a control message
 * into the projection's queue, in the group, so the group's own consumer replays the parked
 * events in order through the same apply code, and clears the park once all of them succeeded.
 *
 * Law F holds: the projection writes only its own table, publishes nothing, sends to no queue.
 *
 * Items (keys contain "#", which view keys cannot, so parks are never served as views):
 * - head  `parked#<group>`: the window `first .. next-1` of sequence numbers still parked,
 *   the failure (reason, attempts, failed event), the last redrive's outcome;
 * - entry `parked#<group>#<seq>`: one parked message, its raw body included (≤ 256 KiB: the
 *   relay sends larger events by claim check).
 * All writes to a head are conditional on the window they read, so a redelivery racing a
 * redrive neither loses an appended event nor applies one twice out of order.
 */
import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient } from "../aws/clients.ts";
import { isConditionalCheckFailed } from "../aws/errors.ts";
import { retry } from "../retry.ts";
import { queuedEvent, recordParked } from "../telemetry/subscriber-hops.ts";

export const parkKeyPrefix = "parked#";

export const parkHeadKey = (group: string) => `${parkKeyPrefix}${group}`;
const entryKey = (group: string, seq: number) => `${parkKeyPrefix}${group}#${String(seq).padStart(10, "0")}`;
const skippedKey = (group: string, seq: number) => `skipped#${group}#${String(seq).padStart(10, "0")}`;

/** The outcome of a redrive that did not clear its park. */
export interface RedriveFailure {
  readonly requestId: string;
  readonly at: string;
  readonly reason: string;
  readonly eventId?: string;
}

/** The head of an aggregate's park. */
export interface ParkHead {
  readonly id: string;
  readonly kind: "park";
  /** The message group parked (`<aggregate type>#<aggregate id>` for events from the relay). */
  readonly group: string;
  readonly projection: string;
  /** Sequence numbers still parked: `first` up to `next - 1`, in delivery order. */
  readonly first: number;
  readonly next: number;
  /** Why the event at the head of the park failed, after how many attempts, which event. */
  readonly reason: string;
  readonly attempts: number;
  readonly failedEventId?: string;
  readonly parkedAt: string;
  readonly updatedAt: string;
  /** Id of the message appended last: a redelivery of it (a lost ack) is not appended twice. */
  readonly lastMessageId: string;
  readonly lastRedrive?: RedriveFailure;
}

/** What the runtime knows of a message it parks. */
export interface ParkInput {
  readonly messageId: string;
  readonly body: string;
  readonly eventId?: string;
  readonly type?: string;
  readonly version?: number;
  /** Set for the event that failed; followers are parked behind it. */
  readonly reason?: string;
  readonly attempts?: number;
}

/** One parked message. */
export interface ParkedEvent extends ParkInput {
  readonly id: string;
  readonly kind: "parked-event";
  readonly group: string;
  readonly seq: number;
  readonly parkedAt: string;
}

/** Reads an aggregate's park, or undefined when it flows. */
export async function readPark(table: string, group: string): Promise<ParkHead | undefined> {
  const result = await dynamoClient().send(
    new GetCommand({ TableName: table, Key: { id: parkHeadKey(group) }, ConsistentRead: true }),
  );
  return result.Item as ParkHead | undefined;
}

/** Parks a failed event: starts the group's park, or appends to it if one exists. Returns the head. */
export async function startPark(
  table: string,
  projection: string,
  group: string,
  input: ParkInput & { readonly reason: string },
): Promise<ParkHead> {
  for (;;) {
    const existing = await readPark(table, group);
    if (existing !== undefined) {
      const appended = await appendToPark(table, existing, input);
      if (appended !== undefined) return appended;
      continue;
    }
    const now = new Date().toISOString();
    await putEntry(table, group, 0, input, now);
    const head: ParkHead = {
      id: parkHeadKey(group),
      kind: "park",
      group,
      projection,
      first: 0,
      next: 1,
      reason: input.reason,
      attempts: input.attempts ?? 1,
      failedEventId: input.eventId,
      parkedAt: now,
      updatedAt: now,
      lastMessageId: input.messageId,
    };
    try {
      await dynamoClient().send(
        new PutCommand({ TableName: table, Item: head, ConditionExpression: "attribute_not_exists(id)" }),
      );
      parked(projection, input);
      return head;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      // Parked concurrently (a redelivery racing us): append to that park instead.
    }
  }
}

/**
 * Appends a message behind an aggregate's park. Returns the new head, or undefined if the park
 * was cleared meanwhile (then the caller applies the event: everything before it was applied).
 */
export async function appendToPark(table: string, head: ParkHead, input: ParkInput): Promise<ParkHead | undefined> {
  let current: ParkHead | undefined = head;
  while (current !== undefined) {
    if (current.lastMessageId === input.messageId) return current; // a redelivery of what we appended last
    const now = new Date().toISOString();
    const seq = current.next;
    await putEntry(table, current.group, seq, input, now);
    try {
      await dynamoClient().send(
        new UpdateCommand({
          TableName: table,
          Key: { id: current.id },
          UpdateExpression: "SET #next = :after, updatedAt = :now, lastMessageId = :message",
          ConditionExpression: "#next = :seq",
          ExpressionAttributeNames: { "#next": "next" },
          ExpressionAttributeValues: { ":after": seq + 1, ":seq": seq, ":now": now, ":message": input.messageId },
        }),
      );
      if (input.reason !== undefined) parked(current.projection, input);
      return { ...current, next: seq + 1, updatedAt: now, lastMessageId: input.messageId };
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
    // Our entry is outside any window now; it is overwritten before a window ever covers it.
    current = await readPark(table, current.group);
  }
  return undefined;
}

/** The analytics bus hears of each event parked for failing (not of those parked behind it). */
function parked(projection: string, input: ParkInput): void {
  recordParked(projection, input.eventId ?? input.messageId, input.reason ?? "", queuedEvent(input.body));
}

async function putEntry(table: string, group: string, seq: number, input: ParkInput, now: string): Promise<void> {
  const entry: ParkedEvent = { ...input, id: entryKey(group, seq), kind: "parked-event", group, seq, parkedAt: now };
  // Unconditional: the sequence number is not yet in the window, so at most a leftover of a
  // crashed append is overwritten.
  await dynamoClient().send(new PutCommand({ TableName: table, Item: entry }));
}

/** A request to replay a parked aggregate, sent into the projection's queue in the aggregate's group. */
export interface RedriveRequest {
  readonly canon: "redrive";
  readonly group: string;
  readonly requestId: string;
  readonly requestedAt: string;
  /** Drop the event at the head of the park, unapplied, if it has this event or message id. */
  readonly skip?: string;
}

/** Reads a redrive request from a message body, or undefined if the body is something else. */
export function parseRedriveRequest(body: string): RedriveRequest | undefined {
  if (!body.includes('"canon"')) return undefined;
  try {
    const json = JSON.parse(body) as Partial<RedriveRequest> | null;
    if (json?.canon !== "redrive" || typeof json.group !== "string" || typeof json.requestId !== "string") {
      return undefined;
    }
    return {
      canon: "redrive",
      group: json.group,
      requestId: json.requestId,
      requestedAt: String(json.requestedAt ?? ""),
      skip: typeof json.skip === "string" ? json.skip : undefined,
    };
  } catch {
    return undefined;
  }
}

export type RedriveResult =
  | { readonly outcome: "cleared"; readonly applied: number; readonly skipped: number }
  | { readonly outcome: "failed"; readonly applied: number; readonly skipped: number; readonly reason: string };

/**
 * Replays a park in order through `apply` (tried up to `tries` times per event). Each applied
 * event leaves the window; the first that still fails stays at its head with the new reason, and
 * the rest stay behind it. When the window is empty, the park is deleted.
 */
export async function redrivePark(
  table: string,
  request: RedriveRequest,
  apply: (entry: ParkedEvent) => Promise<void>,
  tries = 3,
): Promise<RedriveResult> {
  let applied = 0;
  let skipped = 0;
  let headAtStart: number | undefined;
  for (;;) {
    const head = await readPark(table, request.group);
    if (head === undefined) return { outcome: "cleared", applied, skipped };
    headAtStart ??= head.first;
    if (head.first >= head.next) {
      try {
        await dynamoClient().send(
          new DeleteCommand({
            TableName: table,
            Key: { id: head.id },
            ConditionExpression: "#first = :first AND #next = :next",
            ExpressionAttributeNames: { "#first": "first", "#next": "next" },
            ExpressionAttributeValues: { ":first": head.first, ":next": head.next },
          }),
        );
        return { outcome: "cleared", applied, skipped };
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
        continue; // appended to meanwhile
      }
    }
    const seq = head.first;
    const found = await dynamoClient().send(
      new GetCommand({ TableName: table, Key: { id: entryKey(head.group, seq) }, ConsistentRead: true }),
    );
    const entry = found.Item as ParkedEvent | undefined;
    if (entry !== undefined && seq === headAtStart && request.skip !== undefined && isNamed(entry, request.skip)) {
      // The operator gives up on this event for this projection: keep a record of it, unapplied.
      const skippedAt = new Date().toISOString();
      await dynamoClient().send(
        new PutCommand({
          TableName: table,
          Item: { ...entry, id: skippedKey(head.group, seq), kind: "skipped-event", skippedAt },
        }),
      );
      skipped += 1;
    } else if (entry !== undefined) {
      const failure = await attempt(() => apply(entry), tries);
      if (failure !== undefined) {
        const now = new Date().toISOString();
        const lastRedrive: RedriveFailure = {
          requestId: request.requestId,
          at: now,
          reason: failure,
          eventId: entry.eventId ?? entry.messageId,
        };
        await updateHead(
          table,
          head,
          "SET reason = :reason, attempts = attempts + :tries, failedEventId = :event, lastRedrive = :redrive, updatedAt = :now",
          { ":reason": failure, ":tries": tries, ":event": lastRedrive.eventId, ":redrive": lastRedrive, ":now": now },
        );
        return { outcome: "failed", applied, skipped, reason: failure };
      }
      applied += 1;
    }
    const moved = await updateHead(table, head, "SET #first = :after, updatedAt = :now", {
      ":after": seq + 1,
      ":now": new Date().toISOString(),
    });
    if (moved)
      await dynamoClient().send(new DeleteCommand({ TableName: table, Key: { id: entryKey(head.group, seq) } }));
  }
}

function isNamed(entry: ParkedEvent, name: string): boolean {
  return entry.eventId === name || entry.messageId === name;
}

/** Updates a head if its window start is still what was read; false if it moved. */
async function updateHead(
  table: string,
  head: ParkHead,
  expression: string,
  values: Record<string, unknown>,
): Promise<boolean> {
  try {
    await dynamoClient().send(
      new UpdateCommand({
        TableName: table,
        Key: { id: head.id },
        UpdateExpression: expression,
        ConditionExpression: "#first = :seq",
        ExpressionAttributeNames: { "#first": "first" },
        ExpressionAttributeValues: { ...values, ":seq": head.first },
      }),
    );
    return true;
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    return false;
  }
}

/** Runs `run` up to `tries` times (waits from 0–200 ms, doubling); undefined once it succeeds, else why it failed last. */
async function attempt(run: () => Promise<void>, tries: number): Promise<string | undefined> {
  try {
    await retry(run, { attempts: tries, baseMs: 200 });
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}

/** A one-line reason for an error: its name and message. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 1000);
  return String(error).slice(0, 1000);
}

/** A park as listed for an operator: its head and its parked events, without their bodies. */
export interface ParkListing {
  readonly head: ParkHead;
  readonly events: readonly Omit<ParkedEvent, "body">[];
}

/** Lists every park in a projection's table (a scan: for operators, not for the hot path). */
export async function listParks(table: string): Promise<ParkListing[]> {
  const heads: ParkHead[] = [];
  const entries: Omit<ParkedEvent, "body">[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamoClient().send(
      new ScanCommand({
        TableName: table,
        ConsistentRead: true,
        FilterExpression: "begins_with(id, :prefix)",
        ExpressionAttributeValues: { ":prefix": parkKeyPrefix },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      if (item.kind === "park") heads.push(item as ParkHead);
      if (item.kind === "parked-event") {
        const { body: _body, ...rest } = item as ParkedEvent;
        entries.push(rest);
      }
    }
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return heads
    .sort((a, b) => a.parkedAt.localeCompare(b.parkedAt))
    .map((head) => ({
      head,
      events: entries
        .filter((e) => e.group === head.group && e.seq >= head.first && e.seq < head.next)
        .sort((a, b) => a.seq - b.seq),
    }));
}
