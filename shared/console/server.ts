/**
 * The operator console, as `canon dev` mounts it beside the public API: `wrap` sends `/` and
 * `/_canon/*` to the console and everything else to the API. Its data layer (the bus reader,
 * the sampler) starts on the console's first request, or at once with `eager` (what `canon
 * dev` asks for, so the charts have history when the page is first opened); a system that no
 * one looks at pays nothing for it. `stop()` ends open tails and stops the data layer; call it
 * before closing the HTTP server, which waits for open streams.
 */
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { type LocalSourceOptions, localConsoleSource } from "./local-source.ts";
import { consoleRoutes } from "./routes.ts";
import type { ConsoleSource } from "./source.ts";

export interface ConsoleOptions extends LocalSourceOptions {
  /** Start reading the buses and sampling now instead of on the first request. @default false */
  readonly eager?: boolean;
}

/** A fetch handler, as Hono's `app.fetch`. */
export type FetchHandler = (request: Request, ...rest: never[]) => Response | Promise<Response>;

export interface ConsoleServer {
  /** The console in front of another fetch handler (the public API). */
  wrap<F extends FetchHandler>(next: F): F;
  stop(): Promise<void>;
}

/** Whether a path belongs to the console rather than the public API. */
export function isConsolePath(pathname: string): boolean {
  return pathname === "/" || pathname.startsWith("/_canon/");
}

/** The console of one running system, ready to be put in front of its API with `wrap`. */
export function createConsole(options: ConsoleOptions): ConsoleServer {
  let source: ConsoleSource | undefined;
  let stopped = false;
  let signalStopped: () => void = () => {};
  const stoppedPromise = new Promise<void>((resolve) => {
    signalStopped = resolve;
  });
  const getSource = () => {
    if (stopped) throw new Error("the console has stopped");
    source ??= localConsoleSource(options);
    return source;
  };
  if (options.eager) getSource();
  const routes = consoleRoutes({
    source: getSource,
    staticDir: join(options.repoRoot, "console"),
    stopped: stoppedPromise,
  });
  return {
    wrap<F extends FetchHandler>(next: F): F {
      const wrapped = (request: Request, ...rest: never[]) =>
        isConsolePath(new URL(request.url).pathname) ? routes.fetch(request, ...rest) : next(request, ...rest);
      return wrapped as F;
    },
    async stop() {
      stopped = true;
      signalStopped();
      await source?.stop();
    },
  };
}

/** A console served alone (`canon console --aws`): the page and the admin API over any source. */
export interface StandaloneConsole {
  readonly url: string;
  /** Ends open tails, stops the source, closes the server. */
  stop(): Promise<void>;
}

export async function serveConsole(options: {
  readonly source: ConsoleSource;
  readonly repoRoot: string;
  readonly host: string;
  readonly port: number;
}): Promise<StandaloneConsole> {
  let signalStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    signalStopped = resolve;
  });
  const routes = consoleRoutes({
    source: () => options.source,
    staticDir: join(options.repoRoot, "console"),
    stopped,
  });
  let server: ReturnType<typeof serve> | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    server = serve({ fetch: routes.fetch, hostname: options.host, port: options.port }, (info) => resolve(info.port));
    server.once("error", reject);
  });
  return {
    url: `http://${options.host}:${port}`,
    async stop() {
      signalStopped();
      await options.source.stop();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}
