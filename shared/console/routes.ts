/**
 * The console's HTTP surface, served only by `canon dev`: the page at `/`, its static files
 * under `/_canon/ui/`, and a JSON admin API under `/_canon/api/` (read views, the live tail as
 * Server-Sent Events, redrive, warm-up and rebuild). The public API's routes are not touched.
 */
import { readFile } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import { type ConsoleSource, isConsoleRequestError, matchesFilter, type TailEvent, type TailFilter } from "./source.ts";

export interface ConsoleRoutesOptions {
  /** The data layer, started on first use. */
  readonly source: () => ConsoleSource;
  /** The folder with the page's static files (the repo's `console/`). */
  readonly staticDir: string;
  /** Resolves when the console stops: open tails end then. */
  readonly stopped: Promise<void>;
}

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
};

const redriveBody = z.strictObject({
  aggregate: z.string().min(1).max(400),
  skip: z.string().min(1).max(200).optional(),
});

/** Tail filters from a query string: `type` (repeated or comma-separated), `aggregate`, `service`, `bus`. */
function filterOf(query: (name: string) => string | undefined, queries: (name: string) => string[] | undefined) {
  const types = (queries("type") ?? [])
    .flatMap((t) => t.split(","))
    .map((t) => t.trim())
    .filter(Boolean);
  const filter: TailFilter = {
    ...(types.length > 0 ? { types } : {}),
    ...(query("aggregate") ? { aggregate: query("aggregate") } : {}),
    ...(query("service") ? { service: query("service") } : {}),
    ...(query("bus") ? { bus: query("bus") } : {}),
  };
  return filter;
}

/** What the public API takes as a command id (shared/api/intake.ts). */
const commandIdPattern = /^[A-Za-z0-9._~-]{1,256}$/;

/** How far back the hop latency panel may look: the analytics bus's stream keeps a day. */
const maxLatencyMinutes = 24 * 60;

/** A user's input quoted back, cut short when long. */
const quoted = (text: string) => JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);

function boundedInt(value: string | undefined, fallback: number, max: number): number {
  const n = Number(value ?? fallback);
  return Number.isInteger(n) && n >= 0 ? Math.min(n, max) : fallback;
}

/** The console's Hono app: the page, its files and the admin API (mounted by `createConsole`). */
export function consoleRoutes(options: ConsoleRoutesOptions): Hono {
  const app = new Hono();

  const onError = (error: Error, c: Context) => {
    if (isConsoleRequestError(error)) return c.json({ error: error.message }, error.status);
    console.error("canon console:", error);
    return c.json({ error: error.message }, 500);
  };
  app.onError(onError);

  // Steering requests must be JSON from this page: a browser sends a cross-site JSON POST only
  // after a preflight this server never grants (no CORS), so other sites cannot redrive or rebuild.
  app.use("/_canon/api/*", async (c, next) => {
    if (c.req.method === "POST") {
      const type = c.req.header("content-type") ?? "";
      if (!type.startsWith("application/json")) return c.json({ error: "send application/json" }, 415);
      const origin = c.req.header("origin");
      if (origin !== undefined && URL.parse(origin)?.host !== c.req.header("host")) {
        // Another site's, or an opaque one ("null": a sandboxed frame, a file).
        return c.json({ error: "cross-origin requests are refused" }, 403);
      }
    }
    await next();
  });

  const page = async (file: string): Promise<Response> => {
    const path = normalize(join(options.staticDir, file));
    if (!path.startsWith(options.staticDir + sep)) return new Response("not found", { status: 404 });
    const type = contentTypes[extname(path)];
    if (type === undefined) return new Response("not found", { status: 404 });
    try {
      return new Response(await readFile(path), { headers: { "content-type": type, "cache-control": "no-cache" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  };
  app.get("/", () => page("index.html"));
  app.get("/_canon/ui/:file", (c) => page(c.req.param("file")));

  const api = new Hono();
  api.onError(onError);
  api.get("/overview", async (c) => c.json(await options.source().overview()));
  api.get("/buses", async (c) => c.json(await options.source().buses()));
  api.get("/archive", async (c) => c.json(await options.source().archive()));
  api.get("/projections", async (c) => c.json(await options.source().projections()));
  api.get("/functions", async (c) => c.json(await options.source().functions()));
  api.get("/dead-letters", async (c) => c.json(await options.source().deadLetters()));
  api.get("/replays", (c) => c.json(options.source().replays()));
  api.get("/series", (c) => c.json(options.source().series()));
  api.get("/commands", async (c) => c.json(await options.source().commands(boundedInt(c.req.query("limit"), 50, 200))));
  api.get("/commands/:id/trace", async (c) => {
    const id = c.req.param("id");
    if (!commandIdPattern.test(id)) {
      return c.json(
        {
          error: `${quoted(id)} is not a command id: one has 1 to 256 letters, digits, dots, dashes, underscores or tildes`,
        },
        400,
      );
    }
    const journey = await options.source().trace(id);
    if (journey === undefined) return c.json({ error: `no command has the id ${quoted(id)}` }, 404);
    return c.json(journey);
  });
  api.get("/hop-latencies", async (c) => {
    const raw = c.req.query("minutes") ?? "15";
    const minutes = Number(raw);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > maxLatencyMinutes) {
      return c.json(
        { error: `minutes must be a whole number from 1 to ${maxLatencyMinutes}, not ${quoted(raw)}` },
        400,
      );
    }
    return c.json(await options.source().hopLatencies(minutes));
  });
  api.get("/events", (c) => {
    const filter = filterOf(c.req.query.bind(c.req), c.req.queries.bind(c.req));
    return c.json(options.source().recentEvents(filter, boundedInt(c.req.query("limit"), 100, 1_000)));
  });

  api.get("/tail", (c) => {
    const source = options.source();
    const filter = filterOf(c.req.query.bind(c.req), c.req.queries.bind(c.req));
    const backlog = boundedInt(c.req.query("backlog"), 0, 1_000);
    return streamSSE(c, async (stream) => {
      let closed = false;
      let wake: () => void = () => {};
      const ended = new Promise<void>((resolve) => {
        wake = resolve;
      });
      const close = () => {
        closed = true;
        wake();
      };
      stream.onAbort(close);
      void options.stopped.then(close);
      // Events arrive while an earlier write is still flushing: write them in order.
      let writing = Promise.resolve();
      const send = (event: TailEvent) => {
        writing = writing
          .then(() =>
            closed ? undefined : stream.writeSSE({ event: "event", id: event.id, data: JSON.stringify(event) }),
          )
          .catch(close);
      };
      const unsubscribe = source.subscribe((event) => {
        if (!closed && matchesFilter(event, filter)) send(event);
      });
      for (const event of source.recentEvents(filter, backlog)) send(event);
      await stream.writeSSE({ event: "ready", data: JSON.stringify({ filter, backlog }) });
      const ping = setInterval(() => {
        writing = writing
          .then(() => (closed ? undefined : stream.write(": ping\n\n").then(() => undefined)))
          .catch(close);
      }, 15_000);
      await ended;
      clearInterval(ping);
      unsubscribe();
      await writing;
    });
  });

  api.post("/projections/:name/redrive", async (c) => {
    const parsed = redriveBody.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) return c.json({ error: "expected {aggregate, skip?}" }, 400);
    const outcome = await options
      .source()
      .redrive(c.req.param("name"), parsed.data.aggregate, { skip: parsed.data.skip });
    return c.json(outcome, outcome.outcome === "cleared" ? 200 : 409);
  });
  api.post("/queues/:id/move-dead-letters", async (c) =>
    c.json(await options.source().moveDeadLetters(c.req.param("id")), 200),
  );
  for (const action of ["warm-up", "rebuild"] as const) {
    api.post(`/projections/:name/${action}`, async (c) =>
      c.json(await options.source().startReplay(c.req.param("name"), action), 202),
    );
  }
  api.notFound((c) => c.json({ error: `no console route ${c.req.method} ${c.req.path}` }, 404));

  app.route("/_canon/api", api);
  app.notFound((c) => c.json({ error: `not found: ${c.req.path}` }, 404));
  return app;
}
