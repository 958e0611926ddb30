/**
 * `canon dlq move`, over the wire: a service's commands that ended in its command queue's
 * dead-letter queue (as SQS puts them there after maxReceiveCount failed receives: the body the
 * API sent, in the aggregate's message group) go back to the command queue in order, are
 * handled, and get their outcomes; the CLI and the console refuse what cannot be moved.
 */
import { randomUUID } from "node:crypto";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient } from "../../shared/aws/clients.ts";
import type { CommandMessage } from "../../shared/domain/command-message.ts";
import { ids } from "../../shared/plan.ts";
import { readEndpoints } from "../../shared/runner/endpoints.ts";
import { moveDeadLetters } from "../../shared/runner/move-dead-letters.ts";
import { runCanon } from "../support/cli.ts";
import { putDeadLetter, removeDataDir, startSystem, type TestSystem, view, waitFor } from "../support/system.ts";

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
});

/** A command as the API puts it on the accounts command queue. */
function commandMessage(type: string, payload: Record<string, unknown>): CommandMessage {
  const commandId = randomUUID();
  return {
    commandId,
    service: "accounts",
    command: { type, ...payload },
    aggregateId: String(payload.accountId),
    receivedAt: new Date().toISOString(),
    correlationId: commandId,
    causationId: commandId,
  };
}

const deadLetter = (message: CommandMessage) =>
  putDeadLetter(system, "accounts-commands", {
    body: JSON.stringify(message),
    group: message.aggregateId,
    deduplicationId: message.commandId,
  });

async function outcome(commandId: string): Promise<string | undefined> {
  const found = await dynamoClient().send(
    new GetCommand({
      TableName: system.resources.tableNames.get(ids.outcomesTable("accounts")),
      Key: { id: commandId },
      ConsistentRead: true,
    }),
  );
  const status = found.Item?.status as string | undefined;
  return status === "pending" ? undefined : status;
}

const canon = (...args: string[]) => runCanon(system.dataDir, ...args);

describe("moving dead letters back to their queue", () => {
  it("sends a group's commands back in order: the account opens, then takes the deposit", async () => {
    const open = commandMessage("OpenAccount", { accountId: "dlq-1", owner: "Ada" });
    const deposit = commandMessage("Deposit", { accountId: "dlq-1", amountCents: 700 });
    const other = commandMessage("OpenAccount", { accountId: "dlq-2", owner: "Bob" });
    for (const message of [open, deposit, other]) await deadLetter(message);

    const listed = await canon("dlq", "list");
    expect(listed.stdout).toMatch(
      /canon-accounts-commands-dlq\.fifo: 3 message\(s\) \(send them back: canon dlq move accounts-commands\)/,
    );

    const moved = await canon("dlq", "move", "accounts-commands");
    expect(moved.stderr).toBe("");
    expect(moved.code).toBe(0);
    expect(moved.stdout).toContain("accounts-commands: 3 message(s) sent back, 0 left");

    // Out of order, the deposit would be rejected: the account would not exist yet.
    for (const message of [open, deposit, other]) {
      expect(await waitFor(() => outcome(message.commandId), `the outcome of ${message.command.type}`)).toBe(
        "accepted",
      );
    }
    const balance = await waitFor(
      () => view<{ balanceCents: number }>(system, "accounts/balances/dlq-1"),
      "the balance of dlq-1",
    );
    expect(balance.balanceCents).toBe(700);
  });

  it("moves at most --max, and a second move the rest; a move of an empty queue moves nothing", async () => {
    const messages = [1, 2, 3].map((i) => commandMessage("OpenAccount", { accountId: `dlq-max-${i}`, owner: "M" }));
    for (const message of messages) await deadLetter(message);
    const endpoints = readEndpoints(system.dataDir);
    expect(await moveDeadLetters(endpoints, "accounts-commands", { max: 2 })).toEqual({
      queue: "accounts-commands",
      moved: 2,
      left: 1,
    });
    expect(await moveDeadLetters(endpoints, "accounts-commands")).toMatchObject({ moved: 1, left: 0 });
    expect(await moveDeadLetters(endpoints, "accounts-commands")).toMatchObject({ moved: 0, left: 0 });
    for (const message of messages) {
      expect(await waitFor(() => outcome(message.commandId), "an outcome")).toBe("accepted");
    }
  });

  it("refuses an unknown queue, a failure destination, and malformed arguments", async () => {
    const unknown = await canon("dlq", "move", "nope");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown queue "nope" \(known: .*accounts-commands/);
    const failures = await canon("dlq", "move", "core-relay-failures");
    expect(failures.code).toBe(1);
    expect(failures.stderr).toMatch(/failure destination that no function consumes/);
    expect((await canon("dlq", "move")).code).toBe(2);
    expect((await canon("dlq", "move", "accounts-commands", "--max", "0")).code).toBe(2);
    expect((await canon("dlq", "move", "accounts-commands", "--max", "1.5")).code).toBe(2);
  });

  it("is a console action too, refused cross-site, for an unknown queue and a failure destination", async () => {
    const post = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${system.url}/_canon/api/queues/${path}/move-dead-letters`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: "{}",
      });
    const ok = await post("accounts-commands");
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ queue: "accounts-commands", moved: 0, left: 0 });
    expect((await post("nope")).status).toBe(404);
    expect((await post("core-relay-failures")).status).toBe(409);
    expect((await post("accounts-commands", { origin: "null" })).status).toBe(403);
    expect((await post("accounts-commands", { origin: "https://evil.example" })).status).toBe(403);
    const overview = (await (await system.get("/_canon/api/overview")).json()) as {
      deadLetters: { deadLetterQueues: { queue: string; movableTo?: string }[] };
    };
    const queues = overview.deadLetters.deadLetterQueues;
    expect(queues.find((q) => q.queue === "canon-accounts-commands-dlq.fifo")?.movableTo).toBe("accounts-commands");
    expect(queues.find((q) => q.queue === "canon-core-relay-failures")?.movableTo).toBeUndefined();
  });
});
