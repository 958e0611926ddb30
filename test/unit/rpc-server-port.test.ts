/** Where `canon dev` puts its gRPC server (shared/local-cloud/rpc-server.ts). */
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { app } from "../../functions/app.ts";
import { contractsOf } from "../../shared/domain/commands.ts";
import { freePort } from "../../shared/local-cloud/ports.ts";
import { type RpcServer, serveRpcBeside } from "../../shared/local-cloud/rpc-server.ts";

const options = { app, contracts: contractsOf(app) };
const open: (RpcServer | Server)[] = [];
afterEach(async () => {
  for (const server of open.splice(0)) {
    if ("listening" in server) await new Promise<void>((resolve) => server.close(() => resolve()));
    else await server.close();
  }
});

function occupy(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(port, "127.0.0.1", () => resolve(server));
    server.once("error", reject);
    open.push(server);
  });
}

describe("the gRPC server's port", () => {
  it("is the API's port + 1 by default, or a free one when that is taken", async () => {
    const api = await freePort();
    const beside = await serveRpcBeside(options, "127.0.0.1", api, undefined);
    open.push(beside);
    expect(beside.port).toBe(api + 1);
    const taken = await serveRpcBeside(options, "127.0.0.1", api, undefined);
    open.push(taken);
    expect(taken.port).not.toBe(api + 1);
    expect(taken.port).toBeGreaterThan(0);
  });

  it("is the port asked for, and a taken one asked for is an error", async () => {
    const port = await freePort();
    await occupy(port);
    await expect(serveRpcBeside(options, "127.0.0.1", 4000, port)).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});
