/**
 * The decider: the whole of an aggregate's behaviour as pure functions.
 * `decide` turns a command and the current state into events or a rejection;
 * `evolve` folds one event into the state. No clock, no I/O: time comes in with the command.
 */
import type { NewEvent } from "../events/envelope.ts";

/** A domain rule refused the command. Recorded on the bus as a CommandRejected event. */
export interface Rejection {
  readonly rejected: true;
  readonly reason: string;
}

export type Decision = readonly NewEvent[] | Rejection;

/** Facts about the command the domain may use (never a clock of its own). */
export interface CommandContext {
  readonly commandId: string;
  readonly receivedAt: Date;
}

export interface Decider<Command extends { type: string }, State> {
  readonly initialState: State;
  decide(command: Command, state: State, context: CommandContext): Decision;
  evolve(state: State, event: NewEvent): State;
}

/** Builds a rejection with a readable reason. */
export function reject(reason: string): Rejection {
  return { rejected: true, reason };
}

export function isRejection(decision: Decision): decision is Rejection {
  return !Array.isArray(decision) && (decision as Rejection).rejected === true;
}
