/**
 * The console's API seen from a `canon` command (`canon status`, `canon tail`): where the
 * running `canon dev` serves it, its JSON views, and its live tail as a stream of events.
 */
import { readEndpoints } from "../runner/endpoints.ts";
import type { TailEvent, TailFilter } from "./source.ts";

/** Thrown when the console cannot be reached or answers with an error. */
export class ConsoleUnreachableError extends Error {
  override name = "ConsoleUnreachableError";
  readonly code = "console_unreachable" as const;
}

/** The base URL of the console: `url` if given, else the `canon dev` running on `dataDir`. */
export function consoleUrl(options: { url?: string; dataDir: string }): { url: string; startedAt?: string } {
  if (options.url !== undefined) return { url: options.url.replace(/\/+$/, "") };
  const endpoints = readEndpoints(options.dataDir);
  return { url: endpoints.api, startedAt: endpoints.startedAt };
}

/** GETs a JSON view of the console's API (`/_canon/api/<path>`). */
export async function consoleGet<T>(url: string, path: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${url}/_canon/api/${path}`);
  } catch (cause) {
    throw new ConsoleUnreachableError(`cannot reach ${url}: ${(cause as Error).message}`, { cause });
  }
  const text = await response.text();
  if (!response.ok) throw new ConsoleUnreachableError(`${url}/_canon/api/${path}: HTTP ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** The query string of a tail filter (and how many recent events to start with). */
export function tailQuery(filter: TailFilter, backlog: number): string {
  const params = new URLSearchParams({ backlog: String(backlog) });
  for (const type of filter.types ?? []) params.append("type", type);
  if (filter.aggregate) params.set("aggregate", filter.aggregate);
  if (filter.service) params.set("service", filter.service);
  if (filter.bus) params.set("bus", filter.bus);
  return params.toString();
}

/**
 * Follows the console's live tail: yields the last `backlog` matching events, then each new
 * one as it arrives, until `signal` aborts (then it returns) or the server ends the stream
 * (then it throws). `onLive` is called once the backlog is through and new events follow.
 */
export async function* followTail(
  url: string,
  filter: TailFilter,
  options: { backlog: number; signal: AbortSignal; onLive?: () => void },
): AsyncGenerator<TailEvent> {
  let response: Response;
  try {
    response = await fetch(`${url}/_canon/api/tail?${tailQuery(filter, options.backlog)}`, {
      headers: { accept: "text/event-stream" },
      signal: options.signal,
    });
  } catch (cause) {
    if (options.signal.aborted) return;
    throw new ConsoleUnreachableError(`cannot reach ${url}: ${(cause as Error).message}`, { cause });
  }
  if (!response.ok || response.body === null) {
    throw new ConsoleUnreachableError(`${url}/_canon/api/tail: HTTP ${response.status} ${await response.text()}`);
  }
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true }).replaceAll("\r", "");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const message = parseSse(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (message?.event === "event") yield JSON.parse(message.data) as TailEvent;
        else if (message?.event === "ready") options.onLive?.();
        end = buffer.indexOf("\n\n");
      }
    }
  } catch (error) {
    if (options.signal.aborted) return;
    throw new ConsoleUnreachableError(`the tail from ${url} broke off: ${(error as Error).message}`);
  }
  if (!options.signal.aborted) throw new ConsoleUnreachableError(`${url} ended the tail (did canon dev stop?)`);
}

/** One Server-Sent Events message (comments, e.g. pings, give undefined). */
export function parseSse(block: string): { event: string; data: string; id?: string } | undefined {
  let event = "message";
  const data: string[] = [];
  let id: string | undefined;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  return data.length === 0 ? undefined : { event, data: data.join("\n"), ...(id === undefined ? {} : { id }) };
}
