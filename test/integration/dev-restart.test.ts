/**
 * `canon dev` (what `npm start` runs) as a user runs it: a real child process, stopped with
 * SIGTERM and started again on the same data folder. Stream, tables and queues survive, and
 * nothing is left running.
 */
import { afterAll, describe, expect, it } from "vitest";
import { processesMentioning, type RunningCli, startCli } from "../support/cli.ts";
import { removeDataDir, tempDataDir, waitFor } from "../support/system.ts";

const dataDir = tempDataDir("restart");
let running: RunningCli | undefined;

afterAll(async () => {
  await running?.stop("SIGKILL");
  removeDataDir(dataDir);
});

async function send(url: string, command: string, body: unknown): Promise<string> {
  const response = await fetch(`${url}/commands/accounts/${command}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { commandId: string }).commandId;
}

async function outcome(url: string, commandId: string): Promise<string> {
  return waitFor(async () => {
    const body = (await (await fetch(`${url}/commands/${commandId}`)).json()) as { status: string };
    return body.status === "pending" ? undefined : body.status;
  }, `outcome of ${commandId}`);
}

async function balance(url: string, version: number): Promise<number> {
  return waitFor(async () => {
    const response = await fetch(`${url}/views/accounts/balances/keep-1`);
    if (response.status !== 200) return undefined;
    const item = (await response.json()) as { version: number; balanceCents: number };
    return item.version === version ? item.balanceCents : undefined;
  }, `balance at version ${version}`);
}

describe("canon dev across a restart", () => {
  it("keeps the stream, tables and outcomes, continues the history, and leaves no process behind", async () => {
    running = await startCli(dataDir);
    expect(running.output()).toContain("/health");
    expect((await fetch(`${running.url}/health`)).status).toBe(200);
    const opened = await send(running.url, "OpenAccount", { accountId: "keep-1", owner: "Ada" });
    expect(await outcome(running.url, opened)).toBe("accepted");
    const deposited = await send(running.url, "Deposit", { accountId: "keep-1", amountCents: 2500 });
    expect(await outcome(running.url, deposited)).toBe("accepted");
    expect(await balance(running.url, 2)).toBe(2500);

    expect(await running.stop("SIGTERM")).toBe(0);
    expect(running.output()).toContain("canon: stopped");
    expect(processesMentioning(dataDir)).toEqual([]);

    running = await startCli(dataDir);
    expect(await balance(running.url, 2)).toBe(2500);
    expect(await outcome(running.url, deposited)).toBe("accepted");
    // The aggregate's history continues at version 3: the command handler's state survived too.
    const more = await send(running.url, "Deposit", { accountId: "keep-1", amountCents: 500 });
    expect(await outcome(running.url, more)).toBe("accepted");
    expect(await balance(running.url, 3)).toBe(3000);

    expect(await running.stop("SIGINT")).toBe(0);
    running = undefined;
    expect(processesMentioning(dataDir)).toEqual([]);
  });

  it("stops in order on a terminal's Ctrl-C (SIGINT to every process of the group): functions first, then the emulators, nothing lost", async () => {
    running = await startCli(dataDir, { ownGroup: true });
    const more = await send(running.url, "Deposit", { accountId: "keep-1", amountCents: 100 });
    expect(await outcome(running.url, more)).toBe("accepted");
    expect(await balance(running.url, 4)).toBe(3100);
    expect(await running.stop("SIGINT")).toBe(0);
    // The emulators outlived the functions: no function lost its queue or stream while stopping.
    expect(running.output()).not.toMatch(/receive failed|ECONNREFUSED/);
    expect(running.output()).toContain("canon: stopped");
    expect(processesMentioning(dataDir)).toEqual([]);

    running = await startCli(dataDir);
    expect(await balance(running.url, 4)).toBe(3100);
    const after = await send(running.url, "Deposit", { accountId: "keep-1", amountCents: 1 });
    expect(await outcome(running.url, after)).toBe("accepted");
    expect(await balance(running.url, 5)).toBe(3101);
    expect(await running.stop("SIGTERM")).toBe(0);
    running = undefined;
  });
});
