/**
 * Event schemas: each event type's Protobuf message and current schema version. The command
 * handler checks every event it appends against its schema, so nothing off-contract reaches
 * the bus; upcasters (shared/events/upcast.ts) bring older versions up to the current one.
 */
import { type DescMessage, fromJson, type JsonValue } from "@bufbuild/protobuf";

export interface EventSchema {
  readonly schema: DescMessage;
  /** The version written now; bump it (and add an upcaster) for a change old readers can't take. */
  readonly version: number;
}

export type EventSchemas = Readonly<Record<string, EventSchema>>;

/** Thrown when a decider produced an event its schema refuses: a bug, never silently appended. */
export class InvalidEventError extends Error {
  override name = "InvalidEventError";
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
