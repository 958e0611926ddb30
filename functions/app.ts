import type { AppDefinition } from "../shared/topology.ts";
import { accountsService } from "./accounts/service.ts";
import { statementsService } from "./statements/service.ts";
import { transfersService } from "./transfers/service.ts";

/**
 * The example bank: every bus and service, declared once for CDK and the local cloud. The API
 * (with its Connect and gRPC-Web routes), the buses' relays and archivers and each service's
 * functions are built by the kit from these declarations.
 */
export const app: AppDefinition = {
  prefix: "canon",
  buses: [
    { name: "core", shards: 2, retentionHours: 24 },
    // Law K: the system's own telemetry, on a storage of its own (Parquet files for SQL, no arbitration).
    { name: "analytics", kind: "telemetry", shards: 1, retentionHours: 24 },
  ],
  services: [accountsService, transfersService, statementsService],
  rpc: true,
};
