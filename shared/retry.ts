/**
 * Retrying with exponential backoff and full jitter ("Exponential Backoff And Jitter", AWS
 * Architecture Blog): the wait before retry n is a random time from 0 to
 * min(maxMs, baseMs · 2^(n-1)), so callers that failed together do not come back together.
 * Every retry loop of Canon goes through `retry`: an attempt that throws a retryable error is
 * tried again, up to `attempts` tries in all, and then its last error is thrown as it is; an
 * error that is not retryable passes straight through; an abort ends the wait at once.
 *
 * A call that does part of its work (a batch call that leaves items unprocessed) throws an
 * `IncompleteError` from its attempt: the rest is tried again, and when the tries run out the
 * caller's own words say what was left.
 */
import { setTimeout } from "node:timers/promises";
import { isCanonError } from "./errors.ts";

export interface RetryPolicy {
  /** Tries in all, the first included (Infinity: until one succeeds, or the signal aborts). */
  readonly attempts: number;
  /** The longest first wait (ms); each later wait may be twice as long as the one before. */
  readonly baseMs: number;
  /** No wait is longer than this (ms; default: no cap). */
  readonly maxMs?: number;
  /** Whether an error is worth another try (default: every error). */
  readonly retryable?: (error: unknown) => boolean;
  /** Aborting it ends the wait, and `retry` throws the signal's reason. */
  readonly signal?: AbortSignal;
  /** A random number from 0 (included) to 1 (excluded); tests pass their own. */
  readonly random?: () => number;
  /** Waits `ms`, rejecting when `signal` aborts; tests pass their own. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<unknown>;
}

/** Thrown by an attempt that did part of its work: what is left is tried again (see the module's comment). */
export class IncompleteError extends Error {
  override name = "IncompleteError";
  readonly code = "incomplete" as const;
}

/** Whether an attempt left work to try again (an `IncompleteError`). */
export const isIncomplete = (error: unknown): boolean => isCanonError(error, "incomplete");

const sleepFor = (ms: number, signal?: AbortSignal) => setTimeout(ms, undefined, { signal });

/** The wait before retry `n` (from 1): full jitter over an exponentially growing cap. */
export function backoffMs(n: number, policy: Pick<RetryPolicy, "baseMs" | "maxMs" | "random">): number {
  const cap = Math.min(policy.maxMs ?? Infinity, policy.baseMs * 2 ** (n - 1));
  return Math.round((policy.random ?? Math.random)() * cap);
}

/**
 * Calls `attempt` (with its number, from 1) until it resolves, retrying as `policy` says. It is
 * always tried once, whatever `attempts` says. (Kept small: it is in every Lambda bundle.)
 */
export async function retry<T>(attempt: (n: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  const { signal } = policy;
  for (let n = 1; ; n++) {
    signal?.throwIfAborted();
    try {
      return await attempt(n);
    } catch (error) {
      if (n >= policy.attempts || !(policy.retryable?.(error) ?? true)) throw error;
      // node:timers/promises rejects with its own AbortError: say why the caller stopped instead.
      await (policy.sleep ?? sleepFor)(backoffMs(n, policy), signal).catch((stopped) => {
        throw signal?.aborted ? signal.reason : stopped;
      });
    }
  }
}
