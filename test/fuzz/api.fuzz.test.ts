/**
 * Invariant 6 at the HTTP edge, fuzzed over the wire (fast-check, seeded, bounded runs): random
 * and hostile methods, paths, headers and bodies — malformed, oversized, deeply nested, wrong
 * types, prototype keys — get a clear 4xx with a JSON `error` (or a 2xx when fast-check happens
 * to build a valid request), never a 5xx; afterwards the system still answers /health and
 * carries out a good command.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDataDir, startSystem, type TestSystem } from "../support/system.ts";

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

const seed = 20261126;
const numRuns = 60;

/** Sends a request; returns its status and parsed JSON body (undefined when not JSON). */
async function send(
  method: string,
  path: string,
  body: string | Uint8Array | undefined,
  headers: Record<string, string>,
): Promise<{ status: number; json: unknown; text: string }> {
  const response = await fetch(`${system.url}${path}`, {
    method,
    headers,
    body: method === "GET" || method === "HEAD" ? undefined : body,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

/** The contract every answer keeps: no 5xx; an error status carries a JSON `error` string. */
function expectClear(method: string, answer: { status: number; json: unknown; text: string }, what: string): void {
  expect(answer.status, `${what} → ${answer.status} ${answer.text.slice(0, 200)}`).toBeLessThan(500);
  if (answer.status >= 400 && method !== "HEAD") {
    expect(
      typeof (answer.json as { error?: unknown } | undefined)?.error,
      `${what}: ${answer.text.slice(0, 200)}`,
    ).toBe("string");
  }
}

const services = ["accounts", "transfers", "statements", "nope", "", "__proto__", "constructor"];
const commands = ["OpenAccount", "Deposit", "Withdraw", "RequestTransfer", "DebitForTransfer", "toString", "x"];
const segment = fc.oneof(
  fc.constantFrom(...services, ...commands, "commands", "views", "health", "balances", "history", "transfers"),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
  fc.constantFrom("..", "%00", "%2e%2e", "%ff", "a".repeat(300), "%F0%9F%92%A3", "%E2%80%AE", "*", "$"),
);
/** Paths under the API's routes (the operator console's `/_canon` is not the API, so left out). */
const path = fc.oneof(
  fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => `/${parts.join("/")}`),
  fc.tuple(fc.constantFrom(...services), fc.constantFrom(...commands)).map(([s, c]) => `/commands/${s}/${c}`),
  fc.tuple(fc.constantFrom(...services), segment, segment).map(([s, v, k]) => `/views/${s}/${v}/${k}`),
  segment.map((id) => `/commands/${id}`),
);
const method = fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD");

/** Values of every JSON type, plus the hostile ones. */
const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    -1,
    0,
    1.5,
    1e300,
    -1e300,
    Number.MAX_SAFE_INTEGER + 2,
    "",
    " ",
    "\u0000",
    "\ud800",
    "a".repeat(5_000),
    null,
    true,
    [],
    {},
  ),
);
const commandLike = fc.record(
  {
    accountId: hostileValue,
    owner: hostileValue,
    amountCents: hostileValue,
    transferId: hostileValue,
    fromAccountId: hostileValue,
    toAccountId: hostileValue,
    __proto__: hostileValue,
    constructor: hostileValue,
    extra: hostileValue,
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  commandLike.map((o) => JSON.stringify(o)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }),
  fc.constantFrom(
    "",
    "{",
    '{"accountId":',
    '{"__proto__":{"polluted":true},"accountId":"x","amountCents":1}',
    `${'{"a":'.repeat(5_000)}1${"}".repeat(5_000)}`,
    `${"[".repeat(20_000)}${"]".repeat(20_000)}`,
    JSON.stringify({ accountId: "x", owner: "y".repeat(70_000) }),
    "x".repeat(65 * 1024),
  ),
);
const contentType = fc.constantFrom(
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/json; charset=utf-16",
  "",
);
/** Header values fetch can send: visible ASCII. */
const headerValue = fc.string({ maxLength: 200 }).map((s) => s.replace(/[^\x20-\x7e]/g, "").trim());

describe("the HTTP API under fuzzed requests", () => {
  it("answers every request with a 2xx or a clear 4xx, never a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(method, path, body, contentType, headerValue, async (m, p, b, type, key) => {
        const headers: Record<string, string> = {};
        if (type !== "") headers["content-type"] = type;
        if (key !== "") headers["idempotency-key"] = key;
        expectClear(m, await send(m, p, b, headers), `${m} ${p}`);
      }),
      { seed, numRuns },
    );
  });

  it("refuses every malformed command body on a real command route with a 4xx naming the problem", async () => {
    const route = fc.constantFrom(
      "/commands/accounts/OpenAccount",
      "/commands/accounts/Deposit",
      "/commands/accounts/Withdraw",
      "/commands/transfers/RequestTransfer",
    );
    await fc.assert(
      fc.asyncProperty(route, body, fc.option(headerValue, { nil: undefined }), async (r, b, key) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (key) headers["idempotency-key"] = key;
        const answer = await send("POST", r, b, headers);
        expectClear("POST", answer, `POST ${r}`);
      }),
      { seed: seed + 1, numRuns },
    );
  });

  it("still answers /health and carries out a good command afterwards", async () => {
    expect((await system.get("/health")).status).toBe(200);
    const opened = await system.command("accounts", "OpenAccount", { accountId: "fz-ok", owner: "Ada" });
    expect(opened.status).toBe("accepted");
    const deposit = await system.command("accounts", "Deposit", { accountId: "fz-ok", amountCents: 250 });
    expect(deposit.status).toBe("accepted");
    // Nothing polluted: a fresh object has no property the hostile bodies tried to plant.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
