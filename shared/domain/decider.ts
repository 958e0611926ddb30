/**
 * The decider: the whole of an aggregate's behaviour as pure functions.
 * `decide` turns a command and the current state into events or a rejection;
 * `evolve` folds one event into the state. No clock, no I/O: time comes in with the command.
 * Command and event types come from the schemas (`CommandOf`, `EventOf`), so a fold needs no
 * cast and a misspelled event type is a type error.
 */
import type { EventEnvelope, NewEvent } from "../events/envelope.ts";

/** A domain rule refused the command. Recorded on the bus as a CommandRejected event. */
export interface Rejection {
  readonly rejected: true;
  readonly reason: string;
}

export type Decision<Event extends NewEvent = NewEvent> = readonly Event[] | Rejection;

/** Facts about the command the domain may use (never a clock of its own). */
export interface CommandContext {
  readonly commandId: string;
  readonly receivedAt: Date;
}

export interface Decider<Command extends { type: string }, Event extends NewEvent, State> {
  readonly initialState: State;
  decide(command: Command, state: State, context: CommandContext): Decision<Event>;
  evolve(state: State, event: Event): State;
}

/**
 * The CommandRejected event a refused command leaves on the bus, typed by the commands it can
 * refuse: `payload` is the command as it was sent (its `type` and fields).
 */
export type CommandRejectedOf<Command extends { type: string }> = {
  [T in Command["type"]]: {
    readonly type: "CommandRejected";
    readonly data: { readonly command: T; readonly reason: string; readonly payload: Extract<Command, { type: T }> };
  };
}[Command["type"]];

/** Builds a rejection with a readable reason. */
export function reject(reason: string): Rejection {
  return { rejected: true, reason };
}

export function isRejection(decision: Decision): decision is Rejection {
  return !Array.isArray(decision) && (decision as Rejection).rejected === true;
}

/**
 * The event types of a union, each named once and checked by the compiler: a misspelled or a
 * missing type is a type error. For subscriptions (a projection's `events`, a service's), in
 * modules that must not load the Protobuf runtime.
 */
export function eventTypes<Event extends { type: string }>(types: { readonly [T in Event["type"]]: true }) {
  return Object.keys(types) as Event["type"][];
}

/**
 * Whether an envelope read from the bus or the archive is one of `types`; if so it reads as that
 * event, its data typed by the schema (checked when it was appended; upcast older versions first).
 */
export function isEventOf<Event extends NewEvent>(
  event: EventEnvelope,
  types: readonly Event["type"][],
): event is Omit<EventEnvelope, "type" | "data"> & Event {
  return (types as readonly string[]).includes(event.type);
}
