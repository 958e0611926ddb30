/**
 * A token bucket for a replay's writes, so a warm-up or rebuild spares a table's capacity on AWS
 * (provisioned write units, or the on-demand table's share left for live traffic): `take(n)`
 * resolves once n writes fit under `perSecond`, with bursts of at most one second's worth.
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface RateLimit {
  /** Waits until `count` more writes fit under the limit. */
  take(count: number): Promise<void>;
}

/** No limit. */
export const unlimited: RateLimit = { take: async () => {} };

/** A limit of `perSecond` (undefined or 0: none); `now` and `wait` are the clock, for tests. */
export function rateLimit(
  perSecond: number | undefined,
  clock: { now(): number; wait(ms: number): Promise<void> } = { now: () => Date.now(), wait: (ms) => sleep(ms) },
): RateLimit {
  if (perSecond === undefined || perSecond === 0) return unlimited;
  if (!(Number.isFinite(perSecond) && perSecond > 0)) {
    throw new Error(`a write rate limit must be a positive number of writes per second, not ${perSecond}`);
  }
  let tokens = perSecond;
  let at = clock.now();
  let queue: Promise<void> = Promise.resolve();
  const refill = () => {
    const now = clock.now();
    tokens = Math.min(perSecond, tokens + ((now - at) / 1000) * perSecond);
    at = now;
  };
  return {
    take(count) {
      // One waiter at a time, in order: a large take does not starve behind small ones.
      const turn = queue.then(async () => {
        refill();
        while (tokens < Math.min(count, perSecond)) {
          await clock.wait(Math.ceil(((Math.min(count, perSecond) - tokens) / perSecond) * 1000));
          refill();
        }
        tokens -= count;
      });
      queue = turn.catch(() => {});
      return turn;
    },
  };
}
