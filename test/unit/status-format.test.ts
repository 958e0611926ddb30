import { describe, expect, it } from "vitest";
import { formatStatus } from "../../bin/commands/status.ts";
import type { BusView, Overview } from "../../shared/console/source.ts";

const caughtUp = { records: 0, ageMs: 0 };
const bus = (name: string, kind: BusView["kind"], behind: number): BusView => ({
  bus: name,
  kind,
  stream: `canon-${name}`,
  shards: [
    { shardId: "shardId-0", closed: false, records: 10, relay: { records: behind, ageMs: 5 }, archiver: caughtUp },
  ],
  recordsPerSecond: 1,
  caughtUp: true,
});

const overview = (buses: BusView[]): Overview => ({
  generatedAt: "2026-12-02T00:00:00.000Z",
  target: { kind: "local" },
  prefix: "canon",
  startedAt: "2026-12-02T00:00:00.000Z",
  buses,
  archive: [],
  projections: [],
  functions: [],
  queues: [],
  deadLetters: { parked: [], deadLetterQueues: [] } as unknown as Overview["deadLetters"],
  replays: [],
});

describe("canon status", () => {
  it("names each bus's own readers: a telemetry bus has a journey indexer and a columnar store, not a relay", () => {
    const text = formatStatus(overview([bus("core", "events", 0), bus("analytics", "telemetry", 3)]), {});
    const core = text.split("\n").find((line) => line.trimStart().startsWith("core "));
    const analytics = text.split("\n").find((line) => line.trimStart().startsWith("analytics "));
    expect(core).toMatch(/relay .*archiver /);
    expect(analytics).toMatch(/journey indexer .*columnar store /);
    expect(analytics).not.toMatch(/relay|archiver/);
  });
});
