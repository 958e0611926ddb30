/**
 * `canon dev --external`: the path LocalStack takes (docs: README "LocalStack"). No LocalStack
 * here (it needs Docker), so the "external" cloud is the same npm emulators started on their
 * own, reached only through the standard SDK settings (`AWS_ENDPOINT_URL_<SERVICE>`, region,
 * credentials) — what a LocalStack user exports. `canon dev --external` must create the app's
 * resources there, run the functions against them, take a command end to end, and leave the
 * external cloud running when it stops.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ListStreamsCommand } from "@aws-sdk/client-kinesis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kinesisClient } from "../../shared/aws/clients.ts";
import { type LocalCloud, startLocalCloud } from "../../shared/local-cloud/cloud.ts";
import { freePort } from "../../shared/local-cloud/ports.ts";
import { canonBin } from "../support/cli.ts";
import { removeDataDir, repoRoot, tempDataDir, waitFor } from "../support/system.ts";

let cloud: LocalCloud;
const cloudDir = tempDataDir("external-cloud");
const devDir = tempDataDir("external-dev");
const savedEnv = { ...process.env };

beforeAll(async () => {
  cloud = await startLocalCloud({ dataDir: cloudDir });
});

afterAll(async () => {
  await cloud?.stop();
  Object.assign(process.env, savedEnv);
  for (const key of Object.keys(cloud?.env ?? {})) if (!(key in savedEnv)) delete process.env[key];
  removeDataDir(cloudDir);
  removeDataDir(devDir);
});

describe("canon dev --external", () => {
  it("creates the app in the cloud the endpoint variables name, takes a command end to end, and leaves that cloud running", async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [canonBin, "dev", "--external", "--port", String(port), "--data-dir", devDir],
      {
        cwd: repoRoot,
        env: { ...process.env, ...cloud.env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      await waitFor(
        async () => (output.includes("Press Ctrl-C to stop") ? true : undefined),
        "canon dev ready",
        120_000,
      );
      const url = `http://127.0.0.1:${port}`;
      const sent = await fetch(`${url}/commands/accounts/OpenAccount`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ accountId: "ext-1", owner: "Ada" }),
      });
      expect(sent.status).toBe(202);
      const { commandId } = (await sent.json()) as { commandId: string };
      const outcome = await waitFor(async () => {
        const o = (await (await fetch(`${url}/commands/${commandId}`)).json()) as { status: string };
        return o.status === "pending" ? undefined : o;
      }, "the command's outcome");
      expect(outcome.status).toBe("accepted");
      const balance = await waitFor(async () => {
        const r = await fetch(`${url}/views/accounts/balances/ext-1`);
        return r.status === 200 ? ((await r.json()) as { owner: string }) : undefined;
      }, "the balance view");
      expect(balance.owner).toBe("Ada");
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);
    // It started no emulator of its own: nothing of theirs in its data folder, all in the external one.
    for (const kind of ["kinesis", "dynamodb", "sqs-sns-s3"]) {
      expect(existsSync(join(devDir, kind)), kind).toBe(false);
      expect(existsSync(join(cloudDir, kind)), kind).toBe(true);
    }

    // The external cloud is still up, and holds the app's streams.
    Object.assign(process.env, cloud.env);
    const streams = await kinesisClient().send(new ListStreamsCommand({}));
    expect(streams.StreamNames).toEqual(expect.arrayContaining(["canon-core", "canon-analytics"]));
  });
});
