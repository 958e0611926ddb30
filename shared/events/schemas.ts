/**
 * Event schemas: each event type's Protobuf message and current schema version. The command
 * handler checks every event it appends against its schema, so nothing off-contract reaches
 * the bus; upcasters (shared/events/upcast.ts) bring older versions up to the current one.
 * The domain's event types are derived from the same declaration (`EventOf`), so the schemas
 * are the only place an event is written down.
 */
import { type DescMessage, fromJson, type JsonValue, type MessageShape } from "@bufbuild/protobuf";

/** A message's fields as the domain sees them: no Protobuf bookkeeping, 64-bit integers as numbers. */
export type MessageFields<Schema extends DescMessage> = {
  [K in Exclude<keyof MessageShape<Schema>, "$typeName" | "$unknown">]: MessageShape<Schema>[K] extends bigint
    ? number
    : MessageShape<Schema>[K];
};

export interface EventSchema<Schema extends DescMessage = DescMessage> {
  readonly schema: Schema;
  /** The version written now; bump it (and add an upcaster) for a change old readers can't take. */
  readonly version: number;
}

export type EventSchemas = Readonly<Record<string, EventSchema>>;

/**
 * The typed union of an aggregate's events, from its schemas (declare them with
 * `satisfies EventSchemas` so each keeps its message type):
 * `{ type: "FundsDeposited"; data: { accountId: string; amountCents: number } } | …`.
 */
export type EventOf<Schemas extends EventSchemas> = {
  [K in keyof Schemas & string]: { readonly type: K; readonly data: MessageFields<Schemas[K]["schema"]> };
}[keyof Schemas & string];

/** Thrown when a decider produced an event its schema refuses: a bug, never silently appended. */
export class InvalidEventError extends Error {
  override name = "InvalidEventError";
  readonly code = "invalid_event" as const;
}

/** Checks an event's data against its schema (types, no unknown fields); returns its schema version. */
export function checkEvent(schemas: EventSchemas, type: string, data: Record<string, unknown>): number {
  const entry = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
  if (entry === undefined) throw new InvalidEventError(`event type ${type} has no schema`);
  try {
    fromJson(entry.schema, data as JsonValue);
  } catch (cause) {
    throw new InvalidEventError(`event ${type} does not match ${entry.schema.typeName}`, { cause });
  }
  return entry.version;
}
