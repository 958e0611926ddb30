/** The one retry helper (shared/retry.ts): backoff with full jitter, giving up, passing through, aborting. */
import { describe, expect, it } from "vitest";
import { backoffMs, IncompleteError, isIncomplete, type RetryPolicy, retry } from "../../shared/retry.ts";

/** A policy whose waits are recorded, not slept, and whose "random" numbers are given. */
function recorded(policy: Partial<RetryPolicy> & Pick<RetryPolicy, "attempts">, randoms: number[] = []) {
  const waits: number[] = [];
  let next = 0;
  return {
    waits,
    policy: {
      baseMs: 100,
      random: () => randoms[next++] ?? 1 - Number.EPSILON,
      sleep: async (ms: number) => {
        waits.push(ms);
      },
      ...policy,
    } satisfies RetryPolicy,
  };
}

/** An attempt that fails `times` times with `error`, then answers "done". */
function failing(times: number, error: () => unknown = () => new Error("flaky")) {
  const calls: number[] = [];
  const attempt = async (n: number) => {
    calls.push(n);
    if (calls.length <= times) throw error();
    return "done";
  };
  return { calls, attempt };
}

describe("retry", () => {
  it("tries again after each retryable failure, waiting a random share of a doubling cap", async () => {
    const { waits, policy } = recorded({ attempts: 5, baseMs: 100 }, [0.5, 0.25, 1 - Number.EPSILON, 0]);
    const { calls, attempt } = failing(4);
    await expect(retry(attempt, policy)).resolves.toBe("done");
    expect(calls).toEqual([1, 2, 3, 4, 5]);
    // Caps 100, 200, 400, 800: full jitter picks anywhere from 0 to the cap.
    expect(waits).toEqual([50, 50, 400, 0]);
  });

  it("never waits longer than maxMs", () => {
    const policy = { baseMs: 100, maxMs: 1_000, random: () => 1 - Number.EPSILON };
    expect([1, 2, 3, 4, 5, 20].map((n) => backoffMs(n, policy))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it("gives up after its attempts with the last error, as it was thrown", async () => {
    const { waits, policy } = recorded({ attempts: 3 });
    let n = 0;
    const { calls, attempt } = failing(10, () => new Error(`failure ${++n}`));
    await expect(retry(attempt, policy)).rejects.toThrow("failure 3");
    expect(calls).toEqual([1, 2, 3]);
    expect(waits).toHaveLength(2); // no wait after the last try
  });

  it("passes an error that is not retryable straight through, untried again", async () => {
    const refused = new Error("refused");
    const { waits, policy } = recorded({ attempts: 5, retryable: isIncomplete });
    const { calls, attempt } = failing(1, () => refused);
    await expect(retry(attempt, policy)).rejects.toBe(refused);
    expect(calls).toEqual([1]);
    expect(waits).toEqual([]);
  });

  it("retries what an attempt left incomplete, and says what was left when it gives up", async () => {
    let left = 3;
    const { policy } = recorded({ attempts: 2, retryable: isIncomplete });
    const attempt = async () => {
      left -= 1;
      if (left > 0) throw new IncompleteError(`${left} items unprocessed`);
    };
    await expect(retry(attempt, policy)).rejects.toThrow("1 items unprocessed");
    expect(left).toBe(1);
  });

  it("stops waiting when its signal aborts, with the signal's reason", async () => {
    const stop = new AbortController();
    const stopped = new Error("stopping");
    const { calls, attempt } = failing(Number.POSITIVE_INFINITY);
    // The real sleeper (node:timers/promises): a wait of up to a minute ends at the abort.
    const retrying = retry(attempt, {
      attempts: Number.POSITIVE_INFINITY,
      baseMs: 60_000,
      random: () => 0.99,
      signal: stop.signal,
    });
    setTimeout(() => stop.abort(stopped), 20);
    const started = Date.now();
    await expect(retrying).rejects.toBe(stopped);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(calls).toEqual([1]);
  });

  it("does not start when its signal has aborted already", async () => {
    const { calls, attempt } = failing(0);
    await expect(
      retry(attempt, { attempts: 3, baseMs: 1, signal: AbortSignal.abort(new Error("gone")) }),
    ).rejects.toThrow("gone");
    expect(calls).toEqual([]);
  });

  it("tries once, whatever its attempts say", async () => {
    const { calls, attempt } = failing(1);
    await expect(retry(attempt, { attempts: 0, baseMs: 1 })).rejects.toThrow("flaky");
    expect(calls).toEqual([1]);
  });
});
