/** The plan: every resource derived from the declaration, and bad declarations refused. */
import { describe, expect, it } from "vitest";
import { app } from "../../functions/app.ts";
import { envNames, planApp } from "../../shared/plan.ts";
import { laneOf } from "../../shared/runner/kinesis-source.ts";
import { type AppDefinition, type BusDefinition, type ServiceDefinition, topologyOf } from "../../shared/topology.ts";

const service = (overrides: Partial<ServiceDefinition> = {}): ServiceDefinition => ({
  name: "orders",
  bus: "core",
  aggregateType: "Order",
  commandHandler: "h.ts",
  commands: ["PlaceOrder"],
  events: ["OrderPlaced"],
  stateProjection: "s.ts",
  projections: [],
  reactors: [],
  ...overrides,
});
const appWith = (...services: ServiceDefinition[]): AppDefinition => ({
  prefix: "t",
  buses: [{ name: "core" }],
  services,
  apiHandler: "api.ts",
  relayHandler: "relay.ts",
  archiverHandler: "archiver.ts",
});

describe("planApp", () => {
  it("gives every queue a dead-letter queue, and every subscriber queue FIFO", () => {
    const plan = planApp(app);
    for (const queue of plan.queues) {
      expect(queue.deadLetterQueueName).not.toBe(queue.name);
      expect(queue.maxReceiveCount).toBeGreaterThan(0);
    }
    const subscribed = new Set(plan.subscriptions.map((s) => s.queueId));
    for (const queue of plan.queues.filter((q) => subscribed.has(q.id))) expect(queue.fifo).toBe(true);
  });

  it("gives projections no way to write a stream, topic, queue or bucket (law F), but their telemetry", () => {
    for (const fn of planApp(app).functions.filter((f) => f.role === "projection" || f.role === "replayer")) {
      for (const [name, ref] of Object.entries(fn.env)) {
        expect(["table", "value", "bucket", "stream"], `${fn.id}`).toContain(ref.kind);
        // Buckets and events streams only to read: claim checks and, for a replayer, the archive.
        if (ref.kind === "bucket") expect(ref.access, fn.id).toBe("read");
        if (ref.kind === "stream" && ref.access === "write") {
          expect([name, ref.bus], fn.id).toEqual([envNames.telemetryStream, "analytics"]);
        } else if (ref.kind === "stream") expect(ref.bus, fn.id).toBe("core");
      }
    }
  });

  it("keeps every function to its own service's tables and queues, but the API and reactors' sends and the command handlers' reads of their bus's verdicts (law C)", () => {
    const plan = planApp(app);
    const owners = new Map([...plan.tables, ...plan.queues].map((r) => [r.id, JSON.stringify(r.owner)]));
    for (const fn of plan.functions.filter((f) => f.role !== "api")) {
      for (const ref of Object.values(fn.env)) {
        if (ref.kind !== "table" && ref.kind !== "queue") continue;
        if (fn.role === "reactor" && ref.kind === "queue" && ref.access === "send") continue;
        // A command handler reads its bus's verdicts on its commits (the arbitration heads), only reads.
        if (fn.role === "command-handler" && ref.kind === "table" && ref.id.endsWith("-arbitration")) {
          expect(ref.access, fn.id).toBe("read");
          expect(owners.get(ref.id), `${fn.id} → ${ref.id}`).toMatch(/"kind":"bus"/);
          continue;
        }
        expect(owners.get(ref.id), `${fn.id} → ${ref.id}`).toBe(JSON.stringify(fn.owner));
      }
    }
  });

  it("plans a projection-only service without a command side", () => {
    const plan = planApp(app);
    expect(plan.functions.map((f) => f.id)).toContain("statements-history");
    expect(plan.queues.map((q) => q.id)).not.toContain("statements-commands");
  });

  it("refuses inconsistent declarations, naming each problem", () => {
    const cases: [AppDefinition, RegExp][] = [
      [appWith(service(), service()), /declared twice/],
      [appWith(service({ bus: "nope" })), /unknown bus "nope"/],
      [appWith(service({ name: "Bad Name" })), /must match/],
      [appWith(service({ commandHandler: undefined })), /go together/],
      [
        appWith(service({ projections: [{ name: "state", handler: "p.ts", events: ["X"], key: "id" }] })),
        /name is taken/,
      ],
      [appWith(service({ projections: [{ name: "v", handler: "p.ts", events: [], key: "id" }] })), /no event type/],
      [
        appWith(service({ reactors: [{ name: "r", handler: "r.ts", events: ["X"], sendsTo: ["ghost"] }] })),
        /unknown service "ghost"/,
      ],
    ];
    for (const [definition, message] of cases) expect(() => planApp(definition)).toThrow(message);
  });

  describe("how the relay reads its stream (BusDefinition.relayReadsBy)", () => {
    const withBus = (bus: Partial<BusDefinition>) => ({ ...appWith(service()), buses: [{ name: "core", ...bus }] });
    const streamSource = (plan: ReturnType<typeof planApp>, id: string) => {
      const source = plan.functions.find((f) => f.id === id)?.source;
      if (source?.kind !== "kinesis") throw new Error(`${id} reads no stream`);
      return source;
    };

    it("polls by default, and so does the archiver, with no consumer named", () => {
      const plan = planApp(withBus({}));
      for (const id of ["core-relay", "core-archiver"]) {
        expect(streamSource(plan, id).readsBy, id).toBe("polling");
        expect(streamSource(plan, id).consumerName, id).toBeUndefined();
      }
      // The core bus's relay and archiver, and the analytics bus's journey indexer.
      expect(planApp(app).functions.flatMap((f) => (f.source.kind === "kinesis" ? [f.source.readsBy] : []))).toEqual([
        "polling",
        "polling",
        "polling",
      ]);
    });

    it("plans an enhanced fan-out consumer for the relay only, named after it, the rest of its mapping unchanged", () => {
      const polling = streamSource(planApp(withBus({})), "core-relay");
      const plan = planApp(withBus({ relayReadsBy: "enhanced-fan-out" }));
      const relay = streamSource(plan, "core-relay");
      expect(relay).toEqual({ ...polling, readsBy: "enhanced-fan-out", consumerName: "t-core-relay" });
      // The archiver batches for seconds: it keeps polling.
      expect(streamSource(plan, "core-archiver")).toEqual(streamSource(planApp(withBus({})), "core-archiver"));
    });

    it("refuses a read mode it does not know", () => {
      expect(() => planApp(withBus({ relayReadsBy: "push" as never }))).toThrow(
        /bus "core": relayReadsBy must be "polling" or "enhanced-fan-out", not "push"/,
      );
    });

    it("runs the relay in 2 lanes a shard by default, the archiver in one; refuses lanes outside 1..10", () => {
      const plan = planApp(withBus({}));
      expect(streamSource(plan, "core-relay").parallelizationFactor).toBe(2);
      expect(streamSource(plan, "core-archiver").parallelizationFactor).toBe(1);
      expect(streamSource(planApp(withBus({ relayParallelization: 10 })), "core-relay").parallelizationFactor).toBe(10);
      expect(() => planApp(withBus({ relayParallelization: 11 }))).toThrow(
        /bus "core": relayParallelization must be an integer from 1 to 10, not 11/,
      );
    });
  });

  describe("lanes of a Kinesis shard (ParallelizationFactor, locally)", () => {
    it("puts one partition key always in the same lane, and spreads keys over every lane", () => {
      const keys = Array.from({ length: 400 }, (_, i) => `acc-${i}`);
      expect(keys.map((k) => laneOf(k, 4))).toEqual(keys.map((k) => laneOf(k, 4)));
      const counts = [0, 0, 0, 0];
      for (const k of keys) counts[laneOf(k, 4)] = (counts[laneOf(k, 4)] ?? 0) + 1;
      for (const n of counts) expect(n).toBeGreaterThan(60);
      expect(new Set(keys.map((k) => laneOf(k, 1)))).toEqual(new Set([0]));
    });
  });

  describe("projection generations (blue/green by deploy)", () => {
    const balances = { name: "balances", handler: "b.ts", events: ["OrderPlaced"], key: "id" };
    const tableOfView = (plan: ReturnType<typeof planApp>) => {
      const ref = plan.functions.find((f) => f.role === "api")?.env.CANON_VIEW_TABLE_ORDERS_BALANCES;
      return ref?.kind === "table" ? ref.id : undefined;
    };

    it("plans the next generation beside the serving one, detached with its replayer, while the API reads the serving one", () => {
      const plan = planApp(appWith(service({ projections: [{ ...balances, generations: { serving: 1, next: 2 } }] })));
      expect(plan.tables.map((t) => t.id)).toEqual(expect.arrayContaining(["orders-balances", "orders-balances-g2"]));
      expect(plan.queues.map((q) => q.id)).toEqual(expect.arrayContaining(["orders-balances", "orders-balances-g2"]));
      expect(plan.subscriptions.filter((s) => s.queueId.startsWith("orders-balances"))).toHaveLength(2);
      const g1 = plan.functions.find((f) => f.id === "orders-balances");
      const g2 = plan.functions.find((f) => f.id === "orders-balances-g2");
      expect(g1?.startsDetached).toBeUndefined();
      expect(g2).toMatchObject({ role: "projection", startsDetached: true });
      expect(g2?.env.CANON_TABLE).toEqual({ kind: "table", id: "orders-balances-g2", access: "readWrite" });
      expect(plan.functions.find((f) => f.id === "orders-balances-g2-replayer")?.handlerExport).toBe("replay");
      expect(tableOfView(plan)).toBe("orders-balances");
    });

    it("moves reads to the next generation once it serves, and drops the old one from the plan", () => {
      const plan = planApp(appWith(service({ projections: [{ ...balances, generations: { serving: 2 } }] })));
      expect(tableOfView(plan)).toBe("orders-balances-g2");
      expect(plan.tables.map((t) => t.id)).not.toContain("orders-balances");
      expect(plan.functions.find((f) => f.id === "orders-balances-g2")?.startsDetached).toBeUndefined();
    });

    it("refuses generations that go backwards, are not integers, or take another part's name", () => {
      const refused =
        (generations: { serving: number; next?: number }, extra: object[] = []) =>
        () =>
          planApp(appWith(service({ projections: [{ ...balances, generations }, ...(extra as never[])] })));
      expect(refused({ serving: 2, next: 2 })).toThrow(/generations\.next must be an integer above serving \(2\)/);
      expect(refused({ serving: 0 })).toThrow(/generations\.serving must be an integer from 1 to 999, not 0/);
      expect(refused({ serving: 1.5 })).toThrow(/generations\.serving/);
      expect(refused({ serving: 1, next: 2 }, [{ ...balances, name: "balances-g2" }])).toThrow(
        /generation name "balances-g2" is taken/,
      );
    });
  });
});

describe("a telemetry bus (law K)", () => {
  const withTelemetry = (): AppDefinition => ({
    ...appWith(service()),
    buses: [{ name: "core" }, { name: "analytics", kind: "telemetry", shards: 1 }],
  });

  it("plans a stream and a columnar store, with no relay, arbitration, topic or archive", () => {
    const plan = planApp(withTelemetry());
    expect(plan.streams.map((s) => [s.bus, s.kind])).toEqual([
      ["core", "events"],
      ["analytics", "telemetry"],
    ]);
    expect(plan.topics.map((t) => t.bus)).toEqual(["core"]);
    expect(plan.buckets.map((b) => b.bus)).toEqual(["core"]);
    expect(plan.tables.map((t) => t.id)).not.toContain("analytics-arbitration");
    const busFunctions = plan.functions.filter((f) => f.owner.kind === "bus" && f.owner.name === "analytics");
    expect(busFunctions.map((f) => [f.id, f.role])).toEqual([["analytics-journeys", "journeys"]]);
    expect(plan.subscriptions.map((s) => s.bus)).not.toContain("analytics");
    expect(plan.telemetry).toEqual([
      {
        bus: "analytics",
        streamName: "t-analytics",
        bucket: "t-analytics-records",
        prefix: "records/",
        deliveryStream: "t-analytics-delivery",
        database: "t_analytics",
        table: "records",
        workGroup: "t-analytics-telemetry",
        retentionDays: 90,
        owner: { kind: "bus", name: "analytics" },
      },
    ]);
  });

  it("indexes journeys into a table keyed by trace and span, expiring, from the stream in batches of 500", () => {
    const plan = planApp(withTelemetry());
    expect(plan.tables.find((t) => t.id === "journeys")).toEqual({
      id: "journeys",
      name: "t-journeys",
      partitionKey: "traceId",
      sortKey: "spanId",
      timeToLiveAttribute: "expiresAt",
      owner: { kind: "bus", name: "analytics" },
    });
    const indexer = plan.functions.find((f) => f.id === "analytics-journeys");
    expect(indexer).toMatchObject({
      handler: "shared/handlers/journey-indexer.ts",
      source: { kind: "kinesis", bus: "analytics", batchSize: 500, batchWindowSeconds: 1 },
      env: { [envNames.journeyTable]: { kind: "table", id: "journeys", access: "readWrite" } },
    });
    expect(plan.queues.map((q) => q.id)).toContain("analytics-journeys-failures");
    // It reads the telemetry stream: emitting to it would feed itself.
    expect(indexer?.env[envNames.telemetryStream]).toBeUndefined();
  });

  it("lets every other function put its telemetry on the bus, and the API read the journeys", () => {
    const plan = planApp(withTelemetry());
    for (const fn of plan.functions.filter((f) => f.role !== "journeys")) {
      expect(fn.env[envNames.telemetryStream], fn.id).toEqual({ kind: "stream", bus: "analytics", access: "write" });
    }
    const api = plan.functions.find((f) => f.id === "api");
    expect(api?.env[envNames.journeyTable]).toEqual({ kind: "table", id: "journeys", access: "read" });
  });

  it("keeps the Parquet files 90 days unless the bus says, and refuses a retention that is not one", () => {
    const days = (bus: Partial<BusDefinition>) =>
      planApp({ ...withTelemetry(), buses: [{ name: "core" }, { name: "analytics", kind: "telemetry", ...bus }] })
        .telemetry[0]?.retentionDays;
    expect(days({})).toBe(90);
    expect(days({ telemetryRetentionDays: 400 })).toBe(400);
    expect(() => days({ telemetryRetentionDays: 0 })).toThrow(
      /telemetryRetentionDays must be a whole number of days from 1 to 3650, not 0/,
    );
    expect(() => planApp({ ...withTelemetry(), buses: [{ name: "core", telemetryRetentionDays: 30 }] })).toThrow(
      /bus "core": telemetryRetentionDays is for a telemetry bus/,
    );
  });

  it("leaves telemetry off without a telemetry bus", () => {
    const plan = planApp(appWith(service()));
    expect(plan.telemetry).toEqual([]);
    for (const fn of plan.functions) expect(Object.keys(fn.env), fn.id).not.toContain(envNames.telemetryStream);
  });

  it("refuses a second telemetry bus, a service on one, and relay options on one", () => {
    const base = withTelemetry();
    expect(() => planApp({ ...base, buses: [...base.buses, { name: "more", kind: "telemetry" }] })).toThrow(
      /at most one telemetry bus, not 2 \("analytics", "more"\)/,
    );
    expect(() => planApp({ ...base, services: [service({ bus: "analytics" })] })).toThrow(
      /service "orders" is on "analytics", a telemetry bus/,
    );
    expect(() =>
      planApp({
        ...base,
        buses: [{ name: "core" }, { name: "analytics", kind: "telemetry", relayParallelization: 2 }],
      }),
    ).toThrow(/telemetry bus: it has no relay/);
    expect(() => planApp({ ...base, buses: [{ name: "core", kind: "logs" as never }] })).toThrow(
      /kind must be "events" or "telemetry", not "logs"/,
    );
  });
});

describe("the bank's declaration", () => {
  it("builds every function of a declared part from its module in the service's folder", () => {
    const fns = new Map(planApp(app).functions.map((f) => [f.id, f]));
    expect(fns.get("accounts-command-handler")).toMatchObject({
      handler: "functions/accounts/decider.ts",
      entry: { kind: "command-handler", service: "accounts", contract: "functions/accounts/contract.ts" },
    });
    expect(fns.get("accounts-state")).toMatchObject({
      handler: "functions/accounts/decider.ts",
      entry: { kind: "state" },
    });
    expect(fns.get("accounts-daily-totals")).toMatchObject({
      handler: "functions/accounts/daily-totals-projection.ts",
      entry: { kind: "projection", name: "daily-totals", view: "counters" },
    });
    expect(fns.get("accounts-activity-replayer")).toMatchObject({
      entry: { kind: "replayer" },
      handlerExport: "replay",
    });
    expect(fns.get("transfers-saga")?.entry).toMatchObject({
      kind: "reactor",
      targets: { accounts: "functions/accounts/contract.ts", transfers: "functions/transfers/contract.ts" },
    });
    // The API's entry reads the services' commands and views, and the contracts, nothing else.
    expect(fns.get("api")?.entry?.targets).toEqual({
      accounts: "functions/accounts/contract.ts",
      transfers: "functions/transfers/contract.ts",
    });
    expect(fns.get("core-relay")).toMatchObject({ handler: "shared/handlers/relay.ts", entry: { kind: "relay" } });
  });

  it("plans the same from its topology, which a worker can be sent (no functions, no descriptors)", () => {
    const topology = structuredClone(topologyOf(app));
    expect(planApp(topology)).toEqual(planApp(app));
    expect(() => structuredClone(app)).toThrow();
  });
});
