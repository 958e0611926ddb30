/**
 * The message that carries a command from the API (or a reactor) to a service's command
 * queue. Validated again on arrival: a queue is an entry point too.
 */
import { isObject, onlyKeys, optionalText, type Shape, ShapeError, shape, text } from "../events/check.ts";

export interface CommandMessage {
  commandId: string;
  service: string;
  /** The command's name (`type`) and its fields, as sent; the command contract checks the fields. */
  command: { type: string } & Record<string, unknown>;
  aggregateId: string;
  receivedAt: string;
  correlationId: string;
  causationId: string;
  /**
   * W3C Trace Context (shared/telemetry/trace-context.ts): the command's trace, and the span
   * that sent it (the API's "accepted", a reactor's "reacted"). Absent from older senders.
   */
  traceparent?: string;
}

/** An ISO 8601 date and time in UTC (`Z`), seconds required, any fraction (zod's `iso.datetime()`). */
const isoDateTime =
  /^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|(?:02)-(?:0[1-9]|1\d|2[0-8])))T(?:(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z))$/;

const keys = /* @__PURE__ */ new Set([
  "commandId",
  "service",
  "command",
  "aggregateId",
  "receivedAt",
  "correlationId",
  "causationId",
  "traceparent",
]);

/** Checks a parsed command message; throws `ShapeError`. Unknown keys are dropped; the command's are kept. */
export function checkCommandMessage(value: unknown): CommandMessage {
  if (!isObject(value)) throw new ShapeError([], "expected object");
  text(value, "commandId", 1, 200);
  text(value, "service", 1, 100);
  const command = value.command;
  if (!isObject(command)) throw new ShapeError(["command"], "expected object");
  try {
    text(command, "type", 1, 100);
  } catch (error) {
    if (error instanceof ShapeError) error.path.unshift("command");
    throw error;
  }
  text(value, "aggregateId", 1, 200);
  if (typeof value.receivedAt !== "string" || !isoDateTime.test(value.receivedAt))
    throw new ShapeError(["receivedAt"], "expected an ISO 8601 date and time in UTC");
  text(value, "correlationId", 1, 200);
  text(value, "causationId", 1, 200);
  optionalText(value, "traceparent", 1, 512);
  return onlyKeys(value, keys);
}

/** The command message's shape (`checkCommandMessage`), answering instead of throwing. */
export const commandMessageSchema: Shape<CommandMessage> = /* @__PURE__ */ shape(checkCommandMessage);
