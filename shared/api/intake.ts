/**
 * What the API does, whatever protocol asked (JSON over HTTP in app.ts; Connect, gRPC and
 * gRPC-Web in rpc.ts): take a command in (validate it against its contract, record it once
 * per idempotency key, send it to its service's queue), read a command's outcome, read a view's
 * item. Each answers with a result in the client's words and an HTTP status; the protocols map
 * the status onto their own codes.
 */
import { createHash, randomUUID } from "node:crypto";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient, sqsClient } from "../aws/clients.ts";
import { isConditionalCheckFailed } from "../aws/errors.ts";
import type { CommandMessage } from "../domain/command-message.ts";
import { type CommandSpecs, validateCommand } from "../domain/commands.ts";
import { deterministicId } from "../domain/ids.ts";
import { requireEnv } from "../env.ts";
import type { Outcome } from "../handlers/outcomes.ts";
import { publicOutcome } from "../handlers/outcomes.ts";
import { envNames } from "../plan.ts";
import { sealCommand } from "../privacy/seal.ts";
import { telemetry } from "../telemetry/emitter.ts";
import { hopSpan } from "../telemetry/spans.ts";
import { formatTraceparent, hopSpanId, startTrace, type TraceContext } from "../telemetry/trace-context.ts";
import type { AppDefinition } from "../topology.ts";

export interface ApiOptions {
  readonly app: AppDefinition;
  /** Each service's command contract, by service name. */
  readonly contracts: Readonly<Record<string, CommandSpecs>>;
  /** Health: false until everything behind the API is ready. @default always ready */
  readonly isReady?: () => boolean;
  /** The table a view is read from when it differs from the `planned` one (a local blue/green rebuild). */
  readonly viewTable?: (service: string, view: string, planned: string) => Promise<string | undefined>;
}

/** An answer: 2xx with a body, or an error in the client's words (and the command id when one is known). */
export type Answer =
  | { readonly ok: true; readonly status: 200 | 202; readonly body: Record<string, unknown> }
  | { readonly ok: false; readonly status: 400 | 404 | 413 | 422; readonly error: string; readonly commandId?: string };

interface ApiCommandRecord {
  readonly id: string;
  readonly service: string;
  readonly command: string;
  readonly aggregateId: string;
  readonly requestHash: string;
  readonly receivedAt: string;
  /** The command's trace (W3C trace id): its journey is indexed under it (shared/telemetry/journey.ts). */
  readonly traceId?: string;
}

/** Where a request sits in its trace, and when it arrived (for the "accepted" hop). */
export interface RequestTrace {
  readonly context: TraceContext;
  readonly startedAt: number;
}

/** Largest command body (JSON) or message (Connect, gRPC, gRPC-Web) accepted, in bytes. */
export const maxCommandBytes = 64 * 1024;

const idempotencyKeyPattern = /^[\x21-\x7e]{1,128}$/;
const pathSegmentPattern = /^[A-Za-z0-9._~-]{1,256}$/;

/** Whether `value` is an id or key the API accepts in a path (unreserved URL characters, 1 to 256). */
export const isPathSegment = (value: string): boolean => pathSegmentPattern.test(value);

/** Takes a command in: `payload` is its JSON (protobuf JSON names), `key` the client's idempotency key. */
export async function submitCommand(
  options: ApiOptions,
  serviceName: string,
  commandName: string,
  payload: unknown,
  key: string | undefined,
  trace: RequestTrace = { context: startTrace(), startedAt: Date.now() },
): Promise<Answer> {
  const service = options.app.services.find((s) => s.name === serviceName);
  const contract = options.contracts[serviceName];
  if (service === undefined || contract === undefined) {
    return { ok: false, status: 404, error: `unknown service "${serviceName}"` };
  }
  if (!(service.commands ?? []).includes(commandName)) {
    return { ok: false, status: 404, error: `unknown command "${commandName}" for service "${serviceName}"` };
  }
  if (key !== undefined && !idempotencyKeyPattern.test(key)) {
    return { ok: false, status: 400, error: "Idempotency-Key must be 1 to 128 visible ASCII characters" };
  }
  const validation = validateCommand(contract, commandName, payload);
  if (!validation.ok) return { ok: false, status: validation.status, error: validation.error };

  const requestHash = sha256(`${serviceName}\n${commandName}\n${JSON.stringify(validation.command)}`);
  const commandId = key === undefined ? randomUUID() : deterministicId("idempotency-key", serviceName, key);
  const record: ApiCommandRecord = {
    id: commandId,
    service: serviceName,
    command: commandName,
    aggregateId: validation.aggregateId,
    requestHash,
    receivedAt: new Date().toISOString(),
    traceId: trace.context.traceId,
  };
  const stored = await recordCommand(record);
  if (stored.requestHash !== requestHash) {
    return { ok: false, status: 422, error: "Idempotency-Key was already used for a different request", commandId };
  }
  // A repeated key continues the first request's trace: one command, one journey.
  const parent =
    stored.traceId === undefined || stored.traceId === trace.context.traceId
      ? trace.context
      : firstTrace(stored.traceId, commandId);
  const owner = { commandId, correlationId: commandId, aggregateId: stored.aggregateId };
  const accepted = { source: "api", name: "accepted", parent, owner, startedAt: trace.startedAt } as const;
  const message: CommandMessage = {
    commandId,
    service: serviceName,
    command: validation.command,
    aggregateId: stored.aggregateId,
    receivedAt: stored.receivedAt,
    correlationId: commandId,
    causationId: commandId,
    traceparent: formatTraceparent(hopSpan({ ...accepted, endedAt: 0 }).context),
  };
  // Personal data sealed before the command is queued (docs/privacy.md): the queue and its
  // dead-letter queue hold no plaintext; the handler opens it.
  const sealed = await sealCommand(contract[commandName], message.command);
  // Sent again on a repeated key: FIFO deduplication and the handler's outcome table absorb it,
  // and it heals a first attempt whose send failed.
  await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: requireEnv(envNames.commandQueueUrl(serviceName)),
      MessageBody: JSON.stringify({ ...message, ...sealed }),
      MessageGroupId: stored.aggregateId,
      MessageDeduplicationId: commandId,
    }),
  );
  const emitter = telemetry();
  if (emitter.enabled) emitter.emit(hopSpan({ ...accepted, endedAt: Date.now() }).record);
  return { ok: true, status: 202, body: { commandId } };
}

/** A command's outcome (`pending` until its handler has decided it). */
export async function readOutcome(commandId: string): Promise<Answer> {
  if (!pathSegmentPattern.test(commandId)) return { ok: false, status: 400, error: "malformed command id" };
  const found = await dynamoClient().send(
    new GetCommand({ TableName: requireEnv(envNames.apiCommandsTable), Key: { id: commandId } }),
  );
  const record = found.Item as ApiCommandRecord | undefined;
  if (record === undefined) return { ok: false, status: 404, error: `unknown command id "${commandId}"` };
  const outcome = await dynamoClient().send(
    new GetCommand({ TableName: requireEnv(envNames.serviceOutcomesTable(record.service)), Key: { id: commandId } }),
  );
  const item = outcome.Item as Outcome | undefined;
  if (item === undefined) {
    return {
      ok: true,
      status: 200,
      body: { commandId, status: "pending", command: record.command, aggregateId: record.aggregateId },
    };
  }
  return { ok: true, status: 200, body: publicOutcome(item) };
}

/** A view's item by key. */
export async function readView(options: ApiOptions, service: string, view: string, key: string): Promise<Answer> {
  const projection = options.app.services
    .find((s) => s.name === service)
    ?.projections.find((p) => p.name === view && p.queryable !== false);
  if (projection === undefined) return { ok: false, status: 404, error: `unknown view "${service}/${view}"` };
  if (!pathSegmentPattern.test(key)) return { ok: false, status: 400, error: "malformed key" };
  const planned = requireEnv(envNames.viewTable(service, view));
  const found = await dynamoClient().send(
    new GetCommand({ TableName: (await options.viewTable?.(service, view, planned)) ?? planned, Key: { id: key } }),
  );
  if (found.Item === undefined) return { ok: false, status: 404, error: `no ${service}/${view} item for "${key}"` };
  const { id: _id, ...item } = found.Item;
  return { ok: true, status: 200, body: item };
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

/** The trace a repeated key's first request started, as a parent for the "accepted" hop. */
function firstTrace(traceId: string, commandId: string): TraceContext {
  return { traceId, spanId: hopSpanId(traceId, commandId, "request"), flags: "01" };
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
