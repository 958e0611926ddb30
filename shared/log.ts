/**
 * The one place Canon's Lambda functions take their logger from: Powertools Logger, one JSON
 * line a record with its level, time, service (`canon-<name>`) and sampling settings from the
 * environment (POWERTOOLS_LOG_LEVEL, POWERTOOLS_LOGGER_SAMPLE_RATE).
 *
 * Keys for one record (a commandId, a correlationId): `logger.appendKeys({ commandId })` adds
 * them to every line until `logger.resetKeys()`, which drops them; a handler that works on
 * several records at once gives them as the line's own attributes instead
 * (`logger.info("…", { commandId })`), since appended keys would show on the others' lines too.
 * `commandKeys` makes those attributes the same way everywhere: commandId, correlationId,
 * aggregate and traceId, so one command's lines are found again across every function.
 */
import { Logger } from "@aws-lambda-powertools/logger";

export type { Logger };

/**
 * The logger of a function of kind `name` (`relay`, `projection`, …): service `canon-<name>`.
 * Mark the call `@__PURE__` at a module's top level (as the handlers do), so that a bundle which
 * imports that module only for something else drops its logger: esbuild does not carry a
 * function's own no-side-effects mark across modules.
 */
export function functionLogger(name: string): Logger {
  return new Logger({ serviceName: `canon-${name}` });
}

/** What a command is known by in every function's log lines (see `commandKeys`). */
export interface CommandIds {
  readonly commandId: string;
  readonly correlationId?: string | undefined;
  readonly aggregateId?: string | undefined;
  /** A W3C traceparent: its trace id is logged. */
  readonly traceparent?: string | undefined;
}

/** The log attributes of one command: commandId, correlationId, aggregate and traceId (when known). */
export function commandKeys(ids: CommandIds): Record<string, string> {
  const keys: Record<string, string> = { commandId: ids.commandId };
  if (ids.correlationId) keys.correlationId = ids.correlationId;
  if (ids.aggregateId) keys.aggregate = ids.aggregateId;
  const traceId = ids.traceparent?.split("-")[1];
  if (traceId) keys.traceId = traceId;
  return keys;
}
