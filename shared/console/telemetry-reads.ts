/**
 * What the console reads from the system's telemetry (law K): a command's journey from the
 * journey index, built as the API's `GET /commands/{id}/trace` builds it (shared/telemetry/
 * journey.ts's `buildJourney`), and per-hop latency percentiles from the analytics bus's stored
 * records (shared/analytics/sql.ts's `hopLatencies`: DuckDB over the local Parquet files, or
 * Athena over the deployed Glue table).
 *
 * The tables are named by the console's own view of the app (the local cloud's or the deployed
 * app's names), not by the environment, so the same code reads both. Unlike the public route, a
 * command a reactor sent (in its service's outcomes table, not the API's) has a journey too.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { AnalyticsTarget } from "../analytics/sql.ts";
import { dynamoClient } from "../aws/clients.ts";
import { type AppPlan, ids } from "../plan.ts";
import { buildJourney, readTraceItems } from "../telemetry/journey.ts";
import type { AppDefinition } from "../topology.ts";
import type { HopLatencyReport, JourneyView } from "./source.ts";
import { outcomeTables } from "./views.ts";

export interface TelemetryReads {
  trace(commandId: string): Promise<JourneyView | undefined>;
  hopLatencies(minutes: number): Promise<HopLatencyReport>;
}

/** The tables a journey is read from. */
export interface JourneyTables {
  /** The API's record of each command it took (`api-commands`), with its trace id. */
  readonly commands?: string;
  /** Each service's outcomes table: a command's status, and the commands reactors sent. */
  readonly outcomes: ReadonlyMap<string, string>;
  /** The journeys index (absent: no telemetry bus, no hops). */
  readonly journeys?: string;
}

export function journeyTables(app: AppDefinition, tableNames: ReadonlyMap<string, string>): JourneyTables {
  return {
    commands: tableNames.get(ids.apiCommandsTable()),
    outcomes: outcomeTables(app, tableNames),
    journeys: tableNames.get(ids.journeysTable()),
  };
}

export interface SystemTelemetryOptions {
  readonly app: AppDefinition;
  readonly plan: AppPlan;
  readonly tableNames: ReadonlyMap<string, string>;
  /** Where the analytics bus's records are queried: the local cloud's files, or Athena. */
  readonly target: "local" | "athena";
  /**
   * How long a window's percentiles are reused: each read scans the window's files (locally
   * DuckDB over every Parquet file; on AWS an Athena query, billed by the data it scans).
   */
  readonly latencyCacheMs: number;
  /**
   * The trace of a command from its commit on the bus, when its outcome does not say (a command
   * a reactor sent: only the API's record of a command keeps its trace id).
   */
  readonly traceOf?: (commandId: string) => string | undefined;
}

/** The console's reads of a running system's telemetry. */
export function systemTelemetry(options: SystemTelemetryOptions): TelemetryReads {
  const tables = journeyTables(options.app, options.tableNames);
  const store = options.plan.telemetry[0];
  const target: AnalyticsTarget | undefined =
    store === undefined
      ? undefined
      : options.target === "athena"
        ? { kind: "athena", database: store.database, workGroup: store.workGroup }
        : { kind: "local", bucket: store.bucket, prefix: store.prefix };
  const cached = new Map<number, { at: number; report: Promise<HopLatencyReport> }>();

  const readLatencies = async (minutes: number): Promise<HopLatencyReport> => {
    const generatedAt = new Date().toISOString();
    if (target === undefined) {
      return { minutes, generatedAt, hops: [], unavailable: "No hop latencies: the app declares no telemetry bus." };
    }
    try {
      // Loaded on first use: DuckDB's native module costs a console no one looks at nothing.
      const { hopLatencies } = await import("../analytics/sql.ts");
      return { minutes, generatedAt, hops: await hopLatencies(minutes, { target }) };
    } catch (error) {
      const where = target.kind === "athena" ? "Athena" : "the analytics bus's files";
      return { minutes, generatedAt, hops: [], unavailable: `Could not read ${where}: ${(error as Error).message}` };
    }
  };

  return {
    trace: (commandId) => readJourneyFrom(tables, commandId, options.traceOf),
    hopLatencies(minutes) {
      const hit = cached.get(minutes);
      if (hit !== undefined && Date.now() - hit.at < options.latencyCacheMs) return hit.report;
      const report = readLatencies(minutes);
      cached.set(minutes, { at: Date.now(), report });
      return report;
    },
  };
}

interface CommandRecord {
  readonly service: string;
  readonly command: string;
  readonly traceId?: string;
}

interface OutcomeRecord {
  readonly status?: string;
  readonly command?: string;
  readonly traceId?: string;
  readonly traceparent?: string;
  readonly commit?: { readonly traceparent?: string };
}

/** A command's journey, whether the API took it or a reactor sent it; undefined for an unknown id. */
export async function readJourneyFrom(
  tables: JourneyTables,
  commandId: string,
  traceOf: (commandId: string) => string | undefined = () => undefined,
): Promise<JourneyView | undefined> {
  const taken = tables.commands === undefined ? undefined : await getItem<CommandRecord>(tables.commands, commandId);
  if (taken !== undefined) {
    const outcomes = tables.outcomes.get(taken.service);
    const outcome = outcomes === undefined ? undefined : await getItem<OutcomeRecord>(outcomes, commandId);
    return journeyOf(tables, commandId, taken.traceId ?? traceIdOf(outcome) ?? traceOf(commandId), {
      command: taken.command,
      status: outcome?.status ?? "pending",
    });
  }
  // A command a reactor sent is known only to its service's outcomes table.
  const found = await Promise.all(
    [...tables.outcomes.values()].map((table) => getItem<OutcomeRecord>(table, commandId)),
  );
  const outcome = found.find((item) => item !== undefined);
  if (outcome === undefined) return undefined;
  return journeyOf(tables, commandId, traceIdOf(outcome) ?? traceOf(commandId), {
    command: outcome.command ?? "",
    status: outcome.status ?? "pending",
  });
}

async function journeyOf(
  tables: JourneyTables,
  commandId: string,
  traceId: string | undefined,
  known: { readonly command: string; readonly status: string },
): Promise<JourneyView> {
  const items = traceId === undefined ? [] : await readTraceItems(tables.journeys, traceId);
  return buildJourney(commandId, traceId ?? "", known, items);
}

/** A W3C traceparent's trace id: `00-<32 hex trace id>-<16 hex span id>-<flags>`. */
const traceparentPattern = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

function traceIdOf(outcome: OutcomeRecord | undefined): string | undefined {
  if (outcome === undefined) return undefined;
  if (outcome.traceId) return outcome.traceId;
  const header = outcome.traceparent ?? outcome.commit?.traceparent;
  return header === undefined ? undefined : traceparentPattern.exec(header)?.[1];
}

async function getItem<T>(table: string, id: string): Promise<T | undefined> {
  const found = await dynamoClient().send(new GetCommand({ TableName: table, Key: { id } }));
  return found.Item as T | undefined;
}
