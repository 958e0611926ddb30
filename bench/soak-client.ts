/** The soaks' client: commands with retries under one Idempotency-Key, outcomes and views by polling. */
import { setTimeout as sleep } from "node:timers/promises";
import { archivePassed } from "../shared/archive/watermark.ts";
import type { DevSystem } from "../shared/local-cloud/dev.ts";

interface Outcome {
  readonly status: string;
  readonly reason?: string;
}

/** A client's view of the system: commands with retries (same Idempotency-Key), outcomes by polling. */
export class Client {
  readonly url: string;
  /** How long one request or outcome is asked for before giving up (through restarts and crashes). */
  readonly patienceMs: number;
  constructor(url: string, patienceMs = 90_000) {
    this.url = url;
    this.patienceMs = patienceMs;
  }

  /** Sends a command until the API takes it (5xx and network errors retried, bounded); resolves with its outcome. */
  async command(service: string, command: string, body: object, key: string): Promise<Outcome> {
    const commandId = await this.retry(`${command} ${key}`, async () => {
      const response = await fetch(`${this.url}/commands/${service}/${command}`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      if (response.status >= 500) return undefined;
      if (response.status !== 202) throw new Error(`${command}: HTTP ${response.status} ${await response.text()}`);
      return ((await response.json()) as { commandId: string }).commandId;
    });
    return this.retry(`outcome of ${command} ${key}`, async () => {
      const response = await fetch(`${this.url}/commands/${commandId}`, { signal: AbortSignal.timeout(10_000) });
      if (response.status !== 200) return undefined;
      const outcome = (await response.json()) as Outcome;
      return outcome.status === "pending" ? undefined : outcome;
    });
  }

  async view(path: string): Promise<Record<string, unknown> | undefined> {
    const response = await fetch(`${this.url}/views/${path}`, { signal: AbortSignal.timeout(10_000) });
    return response.status === 200 ? ((await response.json()) as Record<string, unknown>) : undefined;
  }

  /** Polls `attempt` (undefined or a network error: again) for up to `patienceMs`. */
  private async retry<T>(what: string, attempt: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + this.patienceMs;
    let last: unknown;
    for (let delay = 50; Date.now() < deadline; delay = Math.min(delay * 2, 1_000)) {
      try {
        const value = await attempt();
        if (value !== undefined) return value;
      } catch (error) {
        if (error instanceof Error && error.message.includes("HTTP 4")) throw error;
        last = error;
      }
      await sleep(delay);
    }
    throw new Error(`gave up on ${what}${last ? `: ${String(last)}` : ""}`);
  }
}

/** Polls until `probe` holds; rejects after `timeoutMs`. */
export async function until(probe: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch {
      // an emulator restarting: ask again
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms`);
}

/** Waits (bounded) until every transfer's view says COMPLETED or FAILED. */
export async function transfersFinished(client: Client, transfers: readonly string[]): Promise<void> {
  const pending = new Set(transfers);
  const deadline = Date.now() + 90_000;
  while (pending.size > 0 && Date.now() < deadline) {
    for (const transferId of [...pending]) {
      const item = await client.view(`transfers/transfers/${transferId}`).catch(() => undefined);
      if (item?.status === "COMPLETED" || item?.status === "FAILED") pending.delete(transferId);
    }
    if (pending.size > 0) await sleep(200);
  }
  if (pending.size > 0) throw new Error(`${pending.size} transfers unfinished after 90 s: ${[...pending].slice(0, 3)}`);
}

/** Waits (90 s at most) until the core bus's archive holds everything appended so far; the problem if not. */
export async function archiveCaughtUp(system: DevSystem): Promise<string | undefined> {
  const moment = new Date();
  const target = {
    bucket: system.resources.archiveBuckets.get("core") as string,
    bus: "core",
    streamName: system.resources.streamNames.get("core") as string,
    moment,
  };
  return until(async () => (await archivePassed(target)).passed, 90_000).then(
    () => undefined,
    () => "the archive did not catch up with the stream within 90 s",
  );
}
