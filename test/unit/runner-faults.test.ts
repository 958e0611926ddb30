/** Fault injection for the local runner: parsed strictly, seeded, reproducible, and bounded. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  defaultFaultSpec,
  type FaultSpec,
  functionRandom,
  parseFaults,
  planKinesisFaults,
  planSqsFaults,
  seededRandom,
} from "../../shared/runner/faults.ts";

describe("parseFaults", () => {
  it("reads every key of CANON_FAULTS", () => {
    expect(
      parseFaults("seed:42,duplicate:0.2,crash:0.1,replay:0.05,delay:3,roles:projection+relay,maxReceives:3,sdk:0.01"),
    ).toEqual({
      seed: 42,
      duplicate: 0.2,
      crash: 0.1,
      replay: 0.05,
      delaySeconds: 3,
      roles: ["projection", "relay"],
      maxReceives: 3,
      sdk: 0.01,
    });
  });

  it("defaults what is not given: no faults, projections only", () => {
    expect(parseFaults("seed:9")).toEqual({ ...defaultFaultSpec, seed: 9 });
  });

  it("refuses unknown keys and values out of range, naming them", () => {
    expect(() => parseFaults("seed:1,dupes:0.5")).toThrow(/unknown key "dupes"/);
    expect(() => parseFaults("crash:1.5")).toThrow(/crash must be a probability/);
    expect(() => parseFaults("duplicate:")).toThrow(/duplicate must be a probability/);
    expect(() => parseFaults("seed:-1")).toThrow(/seed must be an integer/);
    expect(() => parseFaults("delay:0.5")).toThrow(/delay must be an integer/);
  });
});

describe("the seeded PRNG", () => {
  it("gives the same sequence for the same seed, and a different one for another seed", () => {
    const draw = (random: () => number) => Array.from({ length: 20 }, random);
    expect(draw(seededRandom(7))).toEqual(draw(seededRandom(7)));
    expect(draw(seededRandom(7))).not.toEqual(draw(seededRandom(8)));
    expect(draw(functionRandom(7, "accounts-balances"))).toEqual(draw(functionRandom(7, "accounts-balances")));
    expect(draw(functionRandom(7, "accounts-balances"))).not.toEqual(draw(functionRandom(7, "accounts-state")));
  });

  it("draws uniformly enough in [0, 1)", () => {
    const random = seededRandom(123);
    const draws = Array.from({ length: 20_000 }, random);
    expect(draws.every((d) => d >= 0 && d < 1)).toBe(true);
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    expect(mean).toBeGreaterThan(0.49);
    expect(mean).toBeLessThan(0.51);
  });
});

const spec = (overrides: Partial<FaultSpec>): FaultSpec => ({ ...defaultFaultSpec, ...overrides });
const receiveCounts = fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 10 });

describe("planSqsFaults", () => {
  it("replays the same decisions from the same seed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.array(receiveCounts, { maxLength: 20 }), (seed, batches) => {
        const faults = spec({ seed, crash: 0.3, duplicate: 0.3, replay: 0.3, delaySeconds: 4 });
        const run = () => {
          const random = seededRandom(seed);
          return batches.map((counts) => planSqsFaults(faults, random, counts));
        };
        expect(run()).toEqual(run());
      }),
    );
  });

  it("never faults a message received maxReceives times or more, and stays within the batch", () => {
    fc.assert(
      fc.property(fc.integer(), receiveCounts, (seed, counts) => {
        const faults = spec({ crash: 0.5, duplicate: 0.9, delaySeconds: 2, maxReceives: 3 });
        const plan = planSqsFaults(faults, seededRandom(seed), counts);
        if (plan.crashAfter !== undefined) {
          expect(counts.every((c) => c < 3)).toBe(true);
          expect(plan.crashAfter).toBeGreaterThanOrEqual(1);
          expect(plan.crashAfter).toBeLessThanOrEqual(counts.length);
        }
        for (const i of plan.keep) expect(counts[i]).toBeLessThan(3);
        expect(plan.redeliverySeconds).toBeGreaterThanOrEqual(1);
        expect(plan.redeliverySeconds).toBeLessThanOrEqual(2);
      }),
    );
  });

  it("injects nothing with all probabilities at 0", () => {
    fc.assert(
      fc.property(fc.integer(), receiveCounts, (seed, counts) => {
        expect(planSqsFaults(spec({}), seededRandom(seed), counts)).toEqual({
          keep: [],
          replay: false,
          redeliverySeconds: 1,
        });
      }),
    );
  });

  it("injects each kind at about its rate", () => {
    const random = seededRandom(5);
    const faults = spec({ crash: 0.2, duplicate: 0.1, replay: 0.3, maxReceives: 99 });
    const plans = Array.from({ length: 5_000 }, () => planSqsFaults(faults, random, [1, 1, 1, 1]));
    const crashes = plans.filter((p) => p.crashAfter !== undefined).length / plans.length;
    const kept = plans.flatMap((p) => p.keep).length / (plans.filter((p) => p.crashAfter === undefined).length * 4);
    const replays = plans.filter((p) => p.replay).length / plans.filter((p) => p.crashAfter === undefined).length;
    expect(crashes).toBeGreaterThan(0.17);
    expect(crashes).toBeLessThan(0.23);
    expect(kept).toBeGreaterThan(0.08);
    expect(kept).toBeLessThan(0.12);
    expect(replays).toBeGreaterThan(0.27);
    expect(replays).toBeLessThan(0.33);
  });
});

describe("planKinesisFaults", () => {
  it("crashes only early deliveries of a batch, after a prefix of it", () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 5 }),
        (seed, size, attempt) => {
          const plan = planKinesisFaults(spec({ crash: 0.7, maxReceives: 2 }), seededRandom(seed), size, attempt);
          if (attempt >= 2) expect(plan).toEqual({});
          if (plan.crashAfter !== undefined) {
            expect(plan.crashAfter).toBeGreaterThanOrEqual(1);
            expect(plan.crashAfter).toBeLessThanOrEqual(size);
          }
        },
      ),
    );
  });
});
