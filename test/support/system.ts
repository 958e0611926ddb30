/**
 * Test support: the whole system (local cloud, runner, API) started in-process on free
 * ports with a fresh data folder, and small helpers to talk to it over HTTP.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll } from "vitest";
import { app as bankApp } from "../../functions/app.ts";
import { destroyClients, sqsClient } from "../../shared/aws/clients.ts";
import { type CommandSpecs, contractsOf } from "../../shared/domain/commands.ts";
import { type LocalCloud, startLocalCloud } from "../../shared/local-cloud/cloud.ts";
import { type DevSystem, startDev } from "../../shared/local-cloud/dev.ts";
import type { AppDefinition } from "../../shared/topology.ts";

export const repoRoot = resolve(import.meta.dirname, "../..");

export interface TestSystem extends DevSystem {
  readonly dataDir: string;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  get(path: string): Promise<Response>;
  /** Sends a command and waits for its final outcome (not `pending`). */
  command(service: string, command: string, body: unknown, headers?: Record<string, string>): Promise<CommandOutcome>;
}

export interface CommandOutcome {
  readonly commandId: string;
  readonly status: "pending" | "accepted" | "rejected" | "conflicted";
  readonly reason?: string;
  readonly events?: { id: string; type: string; version: number; data: Record<string, unknown> }[];
}

/** A fresh temporary data folder. */
export function tempDataDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `canon-${name}-`));
}

export async function startSystem(
  options: { dataDir?: string; app?: AppDefinition; contracts?: Record<string, CommandSpecs> } = {},
): Promise<TestSystem> {
  const dataDir = options.dataDir ?? tempDataDir("test");
  const system = await startDev({
    app: options.app ?? bankApp,
    contracts: options.contracts ?? contractsOf(bankApp),
    repoRoot,
    dataDir,
    port: 0,
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${system.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const get = (path: string) => fetch(`${system.url}${path}`);
  return {
    ...system,
    dataDir,
    post,
    get,
    async command(service, command, body, headers) {
      const response = await post(`/commands/${service}/${command}`, body, headers);
      if (response.status !== 202) throw new Error(`${command}: HTTP ${response.status} ${await response.text()}`);
      const { commandId } = (await response.json()) as { commandId: string };
      return waitFor(async () => {
        const outcome = (await (await get(`/commands/${commandId}`)).json()) as CommandOutcome;
        return outcome.status === "pending" ? undefined : outcome;
      }, `outcome of ${command} ${commandId}`);
    },
  };
}

/** Removes a data folder (best effort). */
export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** Reads a view item, or undefined while it is 404. */
export async function view<T = Record<string, unknown>>(system: TestSystem, path: string): Promise<T | undefined> {
  const response = await system.get(`/views/${path}`);
  if (response.status === 404) return undefined;
  if (response.status !== 200) throw new Error(`view ${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

/**
 * Puts a message straight into a queue's dead-letter queue, as SQS does after maxReceiveCount
 * failed receives (same body, same message group).
 */
export async function putDeadLetter(
  system: TestSystem,
  queueId: string,
  message: { readonly body: string; readonly group: string; readonly deduplicationId: string },
): Promise<void> {
  await sqsClient().send(
    new SendMessageCommand({
      QueueUrl: system.resources.deadLetterQueueUrls.get(queueId),
      MessageBody: message.body,
      MessageGroupId: message.group,
      MessageDeduplicationId: message.deduplicationId,
    }),
  );
}

/**
 * The emulators alone (no runner, no API) for one test file: started before its tests, with the
 * SDK pointed at them, and stopped and their data folder removed after.
 */
export function useLocalCloud(name: string): { readonly dataDir: string; cloud(): LocalCloud } {
  const dataDir = tempDataDir(name);
  let cloud: LocalCloud | undefined;
  beforeAll(async () => {
    cloud = await startLocalCloud({ dataDir });
    Object.assign(process.env, cloud.env);
  });
  afterAll(async () => {
    destroyClients();
    await cloud?.stop();
    removeDataDir(dataDir);
  });
  return {
    dataDir,
    cloud() {
      if (cloud === undefined) throw new Error("the local cloud is not started yet");
      return cloud;
    },
  };
}
