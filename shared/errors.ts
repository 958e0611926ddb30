/**
 * Canon's errors are told apart by a `code`, not by class or `name` (Castore's pattern): each
 * error class declares its `code`, and `isCanonError(error, code)` is the one check. A code holds
 * where `instanceof` does not (a class bundled twice, loaded by another import, an error rebuilt
 * from a worker's message) and where a name string breaks silently (a class renamed).
 */

/** Every code a Canon error carries, one per error class. */
export type CanonErrorCode =
  | "append_refused"
  | "aws_target"
  | "claim_check"
  | "console_request"
  | "console_unreachable"
  | "incomplete"
  | "invalid_event"
  | "invalid_reaction"
  | "malformed_message"
  | "not_running"
  | "personal_data"
  | "projection_op"
  | "redrive_refused"
  | "replay_state_missing"
  | "scaffold"
  | "shape"
  | "unsupported_rule";

/** Whether `error` is the Canon error of that code (see the codes above). */
export function isCanonError<Code extends CanonErrorCode>(
  error: unknown,
  code: Code,
): error is Error & { readonly code: Code } {
  return error instanceof Error && (error as { code?: unknown }).code === code;
}
