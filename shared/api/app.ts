/**
 * The HTTP API: the client's one entry point. The same Hono app runs behind API Gateway
 * (functions/api/handler.ts) and locally (shared/local-cloud/dev.ts).
 *
 *   POST /commands/{service}/{command}   → 202 { commandId }   (Idempotency-Key optional)
 *   GET  /commands/{commandId}           → the command's outcome
 *   GET  /views/{service}/{view}/{key}   → a projection item
 *   GET  /health                         → 200 once ready
 */
import { createHash, randomUUID } from "node:crypto";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { dynamoClient, sqsClient } from "../aws/clients.ts";
import { isConditionalCheckFailed } from "../aws/errors.ts";
import type { CommandMessage } from "../domain/command-message.ts";
import { type CommandSpecs, validateCommand } from "../domain/commands.ts";
import { deterministicId } from "../domain/ids.ts";
import { requireEnv } from "../env.ts";
import type { Outcome } from "../handlers/outcomes.ts";
import { publicOutcome } from "../handlers/outcomes.ts";
import { envNames } from "../plan.ts";
import type { AppDefinition } from "../topology.ts";

/** Largest command body accepted (bytes). */
export const maxCommandBytes = 64 * 1024;

export interface ApiOptions {
  readonly app: AppDefinition;
  /** Each service's command contract, by service name. */
  readonly contracts: Readonly<Record<string, CommandSpecs>>;
  /** Health: false until everything behind the API is ready. @default always ready */
  readonly isReady?: () => boolean;
  /** The table a view is read from when it differs from the `planned` one (a local blue/green rebuild). */
  readonly viewTable?: (service: string, view: string, planned: string) => Promise<string | undefined>;
}

interface ApiCommandRecord {
  readonly id: string;
  readonly service: string;
  readonly command: string;
  readonly aggregateId: string;
  readonly requestHash: string;
  readonly receivedAt: string;
}

const idempotencyKeyPattern = /^[\x21-\x7e]{1,128}$/;
const pathSegmentPattern = /^[A-Za-z0-9._~-]{1,256}$/;

/** Builds the API's Hono app. Resource names come from the environment (see shared/plan.ts). */
export function createApi(options: ApiOptions): Hono {
  const api = new Hono();
  const services = new Map(options.app.services.map((s) => [s.name, s]));

  api.onError((error, c) => {
    console.error("api error", error);
    return c.json({ error: "internal error" }, 500);
  });
  api.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));

  api.get("/health", (c) =>
    (options.isReady?.() ?? true) ? c.json({ status: "ok" }) : c.json({ status: "starting" }, 503),
  );

  api.post(
    "/commands/:service/:command",
    bodyLimit({
      maxSize: maxCommandBytes,
      onError: (c) => c.json({ error: `body larger than ${maxCommandBytes} bytes` }, 413),
    }),
    async (c) => {
      const serviceName = c.req.param("service");
      const commandName = c.req.param("command");
      const service = services.get(serviceName);
      const contract = options.contracts[serviceName];
      if (service === undefined || contract === undefined) {
        return c.json({ error: `unknown service "${serviceName}"` }, 404);
      }
      if (!(service.commands ?? []).includes(commandName)) {
        return c.json({ error: `unknown command "${commandName}" for service "${serviceName}"` }, 404);
      }
      const key = c.req.header("Idempotency-Key");
      if (key !== undefined && !idempotencyKeyPattern.test(key)) {
        return c.json({ error: "Idempotency-Key must be 1 to 128 visible ASCII characters" }, 400);
      }
      const text = await c.req.text();
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch {
        return c.json({ error: "body is not valid JSON" }, 400);
      }
      const validation = validateCommand(contract, commandName, payload);
      if (!validation.ok) return c.json({ error: validation.error }, validation.status);

      const requestHash = sha256(`${serviceName}\n${commandName}\n${JSON.stringify(validation.command)}`);
      const commandId = key === undefined ? randomUUID() : deterministicId("idempotency-key", serviceName, key);
      const receivedAt = new Date().toISOString();
      const record: ApiCommandRecord = {
        id: commandId,
        service: serviceName,
        command: commandName,
        aggregateId: validation.aggregateId,
        requestHash,
        receivedAt,
      };
      const stored = await recordCommand(record);
      if (stored.requestHash !== requestHash) {
        return c.json({ error: "Idempotency-Key was already used for a different request", commandId }, 422);
      }
      const message: CommandMessage = {
        commandId,
        service: serviceName,
        command: validation.command,
        aggregateId: stored.aggregateId,
        receivedAt: stored.receivedAt,
        correlationId: commandId,
        causationId: commandId,
      };
      // Sent again on a repeated key: FIFO deduplication and the handler's outcome table absorb it,
      // and it heals a first attempt whose send failed.
      await sqsClient().send(
        new SendMessageCommand({
          QueueUrl: requireEnv(envNames.commandQueueUrl(serviceName)),
          MessageBody: JSON.stringify(message),
          MessageGroupId: stored.aggregateId,
          MessageDeduplicationId: commandId,
        }),
      );
      c.header("Location", `/commands/${commandId}`);
      return c.json({ commandId }, 202);
    },
  );

  api.get("/commands/:commandId", async (c) => {
    const commandId = c.req.param("commandId");
    if (!pathSegmentPattern.test(commandId)) return c.json({ error: "malformed command id" }, 400);
    const found = await dynamoClient().send(
      new GetCommand({ TableName: requireEnv(envNames.apiCommandsTable), Key: { id: commandId } }),
    );
    const record = found.Item as ApiCommandRecord | undefined;
    if (record === undefined) return c.json({ error: `unknown command id "${commandId}"` }, 404);
    const outcome = await dynamoClient().send(
      new GetCommand({ TableName: requireEnv(envNames.serviceOutcomesTable(record.service)), Key: { id: commandId } }),
    );
    const item = outcome.Item as Outcome | undefined;
    if (item === undefined) {
      return c.json({ commandId, status: "pending", command: record.command, aggregateId: record.aggregateId });
    }
    return c.json(publicOutcome(item));
  });

  api.get("/views/:service/:view/:key", async (c) => {
    const { service, view, key } = c.req.param();
    const projection = services.get(service)?.projections.find((p) => p.name === view && p.queryable !== false);
    if (projection === undefined) return c.json({ error: `unknown view "${service}/${view}"` }, 404);
    if (!pathSegmentPattern.test(key)) return c.json({ error: "malformed key" }, 400);
    const planned = requireEnv(envNames.viewTable(service, view));
    const found = await dynamoClient().send(
      new GetCommand({ TableName: (await options.viewTable?.(service, view, planned)) ?? planned, Key: { id: key } }),
    );
    if (found.Item === undefined) return c.json({ error: `no ${service}/${view} item for "${key}"` }, 404);
    const { id: _id, ...item } = found.Item;
    return c.json(item);
  });

  return api;
}

/** Stores the command's record once; returns the stored one (the first, for a repeated key). */
async function recordCommand(record: ApiCommandRecord): Promise<ApiCommandRecord> {
  const table = requireEnv(envNames.apiCommandsTable);
  try {
    await dynamoClient().send(
      new PutCommand({ TableName: table, Item: record, ConditionExpression: "attribute_not_exists(id)" }),
    );
    return record;
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    const existing = await dynamoClient().send(
      new GetCommand({ TableName: table, Key: { id: record.id }, ConsistentRead: true }),
    );
    return existing.Item as ApiCommandRecord;
  }
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
