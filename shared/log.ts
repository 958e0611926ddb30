/**
 * The one place Canon's Lambda functions take their logger from: Powertools Logger, one JSON
 * line a record with its level, time, service (`canon-<name>`) and sampling settings from the
 * environment (POWERTOOLS_LOG_LEVEL, POWERTOOLS_LOGGER_SAMPLE_RATE).
 *
 * Keys for one record (a commandId, a correlationId): `logger.appendKeys({ commandId })` adds
 * them to every line until `logger.resetKeys()`, which drops them; a handler that works on
 * several records at once gives them as the line's own attributes instead
 * (`logger.info("…", { commandId })`), since appended keys would show on the others' lines too.
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
