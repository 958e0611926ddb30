/**
 * Upcasters: pure functions from an old version of an event's data to the next, applied
 * wherever events are read, so the archive never has to be rewritten.
 */
import type { EventEnvelope } from "./envelope.ts";

export interface Upcaster {
  readonly type: string;
  /** The schema version it reads; it returns data of version `fromVersion + 1`. */
  readonly fromVersion: number;
  up(data: Record<string, unknown>): Record<string, unknown>;
}

/** Brings an event up to the newest version the upcasters know (unchanged if none applies). */
export function upcast(event: EventEnvelope, upcasters: readonly Upcaster[]): EventEnvelope {
  let current = event;
  for (;;) {
    const next = upcasters.find((u) => u.type === current.type && u.fromVersion === current.schemaversion);
    if (next === undefined) return current;
    current = { ...current, data: next.up(current.data), schemaversion: current.schemaversion + 1 };
  }
}
