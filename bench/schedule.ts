/**
 * The soak's fault schedule, from its seed: which emulator restarts (or is killed), poison records and poison
 * events happen when, and the runner's fault settings (CANON_FAULTS). Pure: the same seed and
 * length give the same schedule.
 */
import { seededRandom } from "../shared/runner/faults.ts";

export type ScheduledFault =
  /**
   * Restart an emulator process under load (same port, same data): gracefully, or with `kill` by
   * SIGKILL, as a crash would. Kinesis is killed: kinesalite loses no record it acknowledged.
   */
  | {
      readonly atMs: number;
      readonly kind: "restart";
      readonly emulator: "dynamodb" | "sqs-sns-s3" | "kinesis";
      readonly kill?: boolean;
    }
  /** Bytes that are not a commit, put straight on the stream: the relay must dead-letter them. */
  | { readonly atMs: number; readonly kind: "poison-record"; readonly variant: number }
  /** A valid commit whose deposit no DynamoDB number can hold: every projection must park it. */
  | { readonly atMs: number; readonly kind: "poison-event" };

export interface SoakSchedule {
  readonly faults: string;
  readonly events: readonly ScheduledFault[];
}

/** Roles whose event sources get runner faults (duplicates, crashes, replays, delays). */
export const faultedRoles = ["projection", "relay", "reactor", "command-handler", "archiver"] as const;

/** `sdkFaults`: the probability per AWS call attempt of a throttle, timeout or reset (shared/aws/sdk-faults.ts). */
export function soakSchedule(seed: number, seconds: number, sdkFaults = 0): SoakSchedule {
  const random = seededRandom(seed);
  const span = seconds * 1000;
  const at = (from: number, to: number) => Math.round(span * (from + random() * (to - from)));
  const events: ScheduledFault[] = [
    { atMs: at(0.15, 0.3), kind: "restart", emulator: "dynamodb" },
    { atMs: at(0.4, 0.5), kind: "restart", emulator: "kinesis", kill: true },
    { atMs: at(0.6, 0.75), kind: "restart", emulator: "sqs-sns-s3" },
    { atMs: at(0.05, 0.9), kind: "poison-event" },
  ];
  const poisonRecords = 3 + Math.floor(random() * 3);
  for (let i = 0; i < poisonRecords; i++) events.push({ atMs: at(0.05, 0.9), kind: "poison-record", variant: i });
  events.sort((a, b) => a.atMs - b.atMs);
  const faults = [
    `seed:${seed % 2 ** 32}`,
    "duplicate:0.1",
    "crash:0.08",
    "replay:0.08",
    "delay:2",
    `roles:${faultedRoles.join("+")}`,
    ...(sdkFaults > 0 ? [`sdk:${sdkFaults}`] : []),
  ].join(",");
  return { faults, events };
}

/** The bytes of a poison record: not JSON, JSON that is not a commit, a commit with a broken event. */
export function poisonRecordBytes(variant: number, seed: number): Buffer {
  switch (variant % 5) {
    case 0:
      return Buffer.from(`not json at all ${seed}`);
    case 1:
      return Buffer.from(JSON.stringify({ kind: "events", commitId: `poison-${seed}` }));
    case 2:
      return Buffer.from([0xff, 0xfe, 0x00, 0x01, seed & 0xff, 0x7b]);
    case 3:
      return Buffer.from(JSON.stringify([1, 2, 3]));
    default:
      return Buffer.from(`{"kind":"events","events":[{"specversion":"0.3"}]`);
  }
}
