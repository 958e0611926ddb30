/** SDK fault injection (the soak's throttles, timeouts and resets): below the SDK's retries, seeded. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { KinesisClient, ListStreamsCommand } from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { injectSdkFaults, sdkFaultCounts, sdkFaultSettings } from "../../shared/aws/sdk-faults.ts";

let server: Server;
let requests = 0;
let endpoint = "";

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      requests += 1;
      response.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      response.end(JSON.stringify({ StreamNames: [], HasMoreStreams: false }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const client = () =>
  new KinesisClient({
    endpoint,
    region: "us-east-1",
    maxAttempts: 10,
    credentials: { accessKeyId: "x", secretAccessKey: "x" },
    requestHandler: new NodeHttpHandler(),
  });

describe("SDK fault injection", () => {
  it("is off unless CANON_FAULTS names sdk", () => {
    expect(sdkFaultSettings(undefined)).toBeUndefined();
    expect(sdkFaultSettings("seed:4,duplicate:0.2")).toBeUndefined();
    expect(sdkFaultSettings("seed:4,sdk:0.05")).toEqual({ probability: 0.05, seed: 4 });
  });

  it("throws throttles, timeouts and resets that the SDK retries; a lost answer means the call was carried out", async () => {
    const saved = process.env.CANON_FAULTS;
    process.env.CANON_FAULTS = "seed:7,sdk:0.3";
    try {
      const kinesis = injectSdkFaults(client(), "test");
      const before = sdkFaultCounts();
      requests = 0;
      for (let i = 0; i < 12; i++) await kinesis.send(new ListStreamsCommand({}));
      const after = sdkFaultCounts();
      const injected = {
        throttle: after.throttle - before.throttle,
        lost: after.timeout - before.timeout + after.reset - before.reset,
      };
      expect(injected.throttle + injected.lost).toBeGreaterThan(0);
      // Throttled attempts never reach the server; lost answers did, and were sent again.
      expect(requests).toBe(12 + injected.lost);
      kinesis.destroy();
    } finally {
      if (saved === undefined) delete process.env.CANON_FAULTS;
      else process.env.CANON_FAULTS = saved;
    }
  });
});
