/**
 * Fault injection for the local runner: the failures at-least-once delivery allows, on purpose,
 * from a seed, so a run can be repeated. Turned on by a runner option or by the environment:
 *
 *   CANON_FAULTS="seed:42,duplicate:0.2,crash:0.1,replay:0.1,delay:2,roles:projection+relay,sdk:0.02"
 *
 * - duplicate: a handled message is not deleted, so the queue delivers it again (a lost ack);
 * - crash: the handler runs on a prefix of the batch, then the invocation is lost, as if the
 *   Lambda died after partial work: nothing is deleted and the whole batch comes back;
 * - replay: a message acknowledged earlier is delivered again later, out of order (what an
 *   archive replay overlapping the live queue does);
 * - delay: each redelivery (after a fault or a failure) waits 1 to `delay` seconds (never less
 *   than 1 s: a visibility timeout of 0 trips fauxqs, see sqs-source.ts);
 * - sdk: the probability, per AWS call attempt in every function and in the API (whatever the
 *   roles), of a throttle, a timeout or a connection reset at the SDK (shared/aws/sdk-faults.ts).
 *
 * Decisions come from a seeded PRNG per function (seed and function name), so a function that
 * receives the same sequence of batches meets the same faults. Faults never push a message past
 * `maxReceives` receives, so they cannot exhaust a queue's maxReceiveCount on their own.
 */

export interface FaultSpec {
  readonly seed: number;
  /** Probability, per handled message, that its deletion is skipped. */
  readonly duplicate: number;
  /** Probability, per invocation, of a crash after partial work. */
  readonly crash: number;
  /** Probability, per invocation, that an earlier message is delivered again with the batch. */
  readonly replay: number;
  /** Longest redelivery delay, in seconds (the shortest is 1). */
  readonly delaySeconds: number;
  /** Function roles that get faults (see PlannedFunction.role). */
  readonly roles: readonly string[];
  /** A message received this many times gets no more faults. */
  readonly maxReceives: number;
  /** Probability, per AWS SDK call attempt, of a throttle, timeout or reset (read by shared/aws/sdk-faults.ts). */
  readonly sdk: number;
}

export const defaultFaultSpec: FaultSpec = {
  seed: 1,
  duplicate: 0,
  crash: 0,
  replay: 0,
  delaySeconds: 0,
  roles: ["projection"],
  maxReceives: 2,
  sdk: 0,
};

/** Kinds of injected faults, as counted by the runner. */
export type FaultKind = "duplicate" | "crash" | "replay" | "throttle" | "timeout" | "reset";

/** Parses a CANON_FAULTS value; throws on an unknown key or a value out of range. */
export function parseFaults(text: string): FaultSpec {
  const spec: { -readonly [K in keyof FaultSpec]: FaultSpec[K] } = { ...defaultFaultSpec };
  for (const part of text.split(",").map((p) => p.trim())) {
    if (part === "") continue;
    const separator = part.indexOf(":");
    const key = separator < 0 ? part : part.slice(0, separator);
    const value = separator < 0 ? "" : part.slice(separator + 1);
    switch (key) {
      case "seed":
        spec.seed = integer(key, value, 0, 2 ** 32 - 1);
        break;
      case "duplicate":
      case "crash":
      case "replay":
      case "sdk":
        spec[key] = probability(key, value);
        break;
      case "delay":
        spec.delaySeconds = integer(key, value, 0, 900);
        break;
      case "maxReceives":
        spec.maxReceives = integer(key, value, 1, 1000);
        break;
      case "roles":
        spec.roles = value.split("+").filter(Boolean);
        break;
      default:
        throw new Error(
          `CANON_FAULTS: unknown key "${key}" (seed, duplicate, crash, replay, delay, roles, maxReceives, sdk)`,
        );
    }
  }
  return spec;
}

function probability(key: string, value: string): number {
  const n = Number(value);
  if (value === "" || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new Error(`CANON_FAULTS: ${key} must be a probability from 0 to 1, not "${value}"`);
  }
  return n;
}

function integer(key: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value === "" || !Number.isInteger(n) || n < min || n > max) {
    throw new Error(`CANON_FAULTS: ${key} must be an integer from ${min} to ${max}, not "${value}"`);
  }
  return n;
}

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/** mulberry32: a small, fast, seeded PRNG; the same seed gives the same sequence. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The PRNG of one function: the run's seed mixed with the function's name (FNV-1a). */
export function functionRandom(seed: number, functionName: string): Random {
  let hash = 0x811c9dc5 ^ seed;
  for (const char of functionName) {
    hash ^= char.codePointAt(0) ?? 0;
    hash = Math.imul(hash, 0x01000193);
  }
  return seededRandom(hash >>> 0);
}

/** What happens to one SQS batch. */
export interface SqsFaultPlan {
  /** Crash after the handler has seen this many records (the result is lost); undefined: no crash. */
  readonly crashAfter?: number;
  /** Positions of records whose deletion is skipped after a successful handling. */
  readonly keep: readonly number[];
  /** Whether an earlier message is delivered again with this batch. */
  readonly replay: boolean;
  /** Seconds before what comes back (crashed, kept or failed records) is visible again. */
  readonly redeliverySeconds: number;
}

/**
 * Decides the faults of one SQS batch from the records' receive counts. Pure given `random`:
 * it draws the same number of values for the same input, so decisions replay from the seed.
 */
export function planSqsFaults(spec: FaultSpec, random: Random, receiveCounts: readonly number[]): SqsFaultPlan {
  const crashDraw = random();
  const prefixDraw = random();
  const replayDraw = random();
  const delayDraw = random();
  const keepDraws = receiveCounts.map(() => random());
  const faultable = receiveCounts.map((count) => count < spec.maxReceives);
  const redeliverySeconds = 1 + Math.floor(delayDraw * Math.max(0, spec.delaySeconds));
  if (receiveCounts.length > 0 && faultable.every(Boolean) && crashDraw < spec.crash) {
    // 1..n records handled before the crash: n is "died after all the work, before the ack".
    const crashAfter = 1 + Math.floor(prefixDraw * receiveCounts.length);
    return { crashAfter, keep: [], replay: false, redeliverySeconds };
  }
  const keep = keepDraws.flatMap((draw, i) => (faultable[i] && draw < spec.duplicate ? [i] : []));
  return { keep, replay: replayDraw < spec.replay, redeliverySeconds };
}

/** What happens to one Kinesis batch: a crash after partial work, or nothing. */
export interface KinesisFaultPlan {
  readonly crashAfter?: number;
}

/** Decides whether a Kinesis invocation crashes; `attempt` counts deliveries of this batch (from 1). */
export function planKinesisFaults(spec: FaultSpec, random: Random, size: number, attempt: number): KinesisFaultPlan {
  const crashDraw = random();
  const prefixDraw = random();
  if (size === 0 || attempt >= spec.maxReceives || crashDraw >= spec.crash) return {};
  return { crashAfter: 1 + Math.floor(prefixDraw * size) };
}
