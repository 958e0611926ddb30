/**
 * What the console reads from the system's telemetry (law K): a command's journey from the
 * journey index (shared/telemetry/journey.ts, as the API's `GET /commands/{id}/trace` does) and
 * per-hop latency percentiles from the analytics bus's stored records (shared/analytics/sql.ts).
 */
import { ConsoleRequestError, type HopLatencyReport, type JourneyView } from "./source.ts";

export interface TelemetryReads {
  trace(commandId: string): Promise<JourneyView | undefined>;
  hopLatencies(minutes: number): Promise<HopLatencyReport>;
}

/** Telemetry reads for a system that records none: a clear refusal, an empty latency table. */
export function noTelemetry(why: string): TelemetryReads {
  return {
    async trace() {
      throw new ConsoleRequestError(`no journeys to show: ${why}`, 409);
    },
    async hopLatencies(minutes) {
      return { minutes, generatedAt: new Date().toISOString(), hops: [], unavailable: `No hop latencies: ${why}.` };
    },
  };
}
