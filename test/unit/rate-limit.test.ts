/** The replay's write limit (shared/archive/rate-limit.ts), on a fake clock. */
import { describe, expect, it } from "vitest";
import { rateLimit } from "../../shared/archive/rate-limit.ts";

function fakeClock() {
  let now = 0;
  return {
    now: () => now,
    async wait(ms: number) {
      now += ms;
    },
  };
}

describe("rateLimit", () => {
  it("lets a second's worth through at once, then holds writes to the rate", async () => {
    const clock = fakeClock();
    const limit = rateLimit(100, clock);
    await limit.take(100);
    expect(clock.now()).toBe(0);
    for (let i = 0; i < 40; i++) await limit.take(25);
    // 1,000 more writes at 100/s: 10 s.
    expect(clock.now()).toBeGreaterThanOrEqual(10_000);
    expect(clock.now()).toBeLessThan(10_100);
  });

  it("keeps the average under the rate for takes larger than a second's worth", async () => {
    const clock = fakeClock();
    const limit = rateLimit(10, clock);
    for (let i = 0; i < 5; i++) await limit.take(25);
    // A take waits for a full bucket, then goes into debt: the fifth of 25 starts at 10 s …
    expect(clock.now()).toBe(10_000);
    // … and the next write waits until the debt is paid: 126 writes, 10 free, at 10/s.
    await limit.take(1);
    expect(clock.now()).toBeGreaterThanOrEqual(11_600);
  });

  it("serves concurrent takes in order, without losing any", async () => {
    const clock = fakeClock();
    const limit = rateLimit(50, clock);
    const order: number[] = [];
    await Promise.all(Array.from({ length: 10 }, (_, i) => limit.take(20).then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(clock.now()).toBeGreaterThanOrEqual(3_000); // 200 writes, 50 free, at 50/s
  });

  it("has no limit when none is set, and refuses a rate that is not a positive number", async () => {
    const clock = fakeClock();
    await rateLimit(undefined, clock).take(1_000_000);
    expect(clock.now()).toBe(0);
    expect(() => rateLimit(-5, clock)).toThrow(/positive number of writes per second, not -5/);
    expect(() => rateLimit(Number.NaN, clock)).toThrow(/positive number/);
  });
});
