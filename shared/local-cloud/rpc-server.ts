/**
 * The local gRPC server: the API's rpcs (shared/api/rpc.ts) on HTTP/2 cleartext (h2c, prior
 * knowledge), where native gRPC clients connect; it speaks gRPC-Web and Connect too. The
 * API's HTTP/1.1 port serves Connect and gRPC-Web as well, as the deployed API does.
 */
import { createServer, type Http2Session } from "node:http2";
import { Code } from "@connectrpc/connect";
import { type ConnectNodeAdapterOptions, connectNodeAdapter } from "@connectrpc/connect-node";
import { type ApiOptions, maxCommandBytes } from "../api/intake.ts";
import { rpcRoutes } from "../api/rpc.ts";

export interface RpcServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A path no rpc serves: UNIMPLEMENTED, in gRPC's terms for a gRPC client, else a JSON 404. */
const unknownMethod: NonNullable<ConnectNodeAdapterOptions["fallback"]> = (request, response) => {
  const message = `no rpc ${(request.url ?? "/").slice(1)}`;
  const grpc = String(request.headers["content-type"] ?? "").startsWith("application/grpc");
  response.statusCode = grpc ? 200 : 404;
  if (grpc) {
    response.setHeader("content-type", "application/grpc");
    response.setHeader("grpc-status", String(Code.Unimplemented));
    response.setHeader("grpc-message", encodeURIComponent(message));
    response.end();
    return;
  }
  response.setHeader("content-type", "application/json");
  response.end(JSON.stringify({ code: "unimplemented", message }));
};

export async function serveRpc(options: ApiOptions, host: string, port: number): Promise<RpcServer> {
  const server = createServer(
    connectNodeAdapter({
      routes: rpcRoutes(options),
      grpc: true,
      grpcWeb: true,
      connect: true,
      readMaxBytes: maxCommandBytes,
      fallback: unknownMethod,
    }),
  );
  // Clients keep their sessions open; on stop they are closed, not waited for.
  const sessions = new Set<Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The gRPC server beside the API on `apiPort`: on the port asked for, else on `apiPort` + 1, or
 * any free port when that one is taken (the banner names it), so a default never keeps `canon
 * dev` from starting.
 */
export async function serveRpcBeside(
  options: ApiOptions,
  host: string,
  apiPort: number,
  asked: number | undefined,
): Promise<RpcServer> {
  if (asked !== undefined) return serveRpc(options, host, asked);
  try {
    return await serveRpc(options, host, apiPort === 0 || apiPort === 65535 ? 0 : apiPort + 1);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    return serveRpc(options, host, 0);
  }
}
