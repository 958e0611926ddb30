/**
 * Command outcomes: what became of each command, kept by the service's command handler in its
 * own table and read by the API (`GET /commands/{commandId}`).
 */
import type { Commit } from "../events/envelope.ts";

export type OutcomeStatus = "pending" | "accepted" | "rejected" | "conflicted";

export interface OutcomeEvent {
  readonly id: string;
  readonly type: string;
  readonly version: number;
  readonly data: Record<string, unknown>;
}

export interface Outcome {
  readonly id: string;
  readonly status: OutcomeStatus;
  readonly command: string;
  readonly aggregateId: string;
  readonly attempt: number;
  /** While pending: the commit appended (or about to be), so a redelivery resumes it. */
  readonly commit?: Commit;
  readonly events?: readonly OutcomeEvent[];
  readonly reason?: string;
  readonly updatedAt: string;
}

/** The events of a commit as a client sees them in an outcome. */
export function outcomeEvents(commit: Commit): OutcomeEvent[] {
  return commit.events.map((e) => ({ id: e.id, type: e.type, version: e.aggregateversion, data: e.data }));
}

/** The public view of an outcome: no internal bookkeeping. */
export function publicOutcome(outcome: Outcome): Record<string, unknown> {
  const { id, status, command, aggregateId, events, reason, updatedAt } = outcome;
  return { commandId: id, status, command, aggregateId, events, reason, updatedAt };
}
