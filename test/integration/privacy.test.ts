/**
 * Personal data over the wire (issue 18), on the embedded local cloud: an account's owner name
 * is sealed by the API on the command queue and by the command handler in its commit — absent in
 * plaintext from a queued command, the stream's records, the archive's objects and a
 * dead-lettered message of a topic subscriber, all read back through the SDK — readable in the views, SQL and the outcome's client while its key exists; after
 * `POST /admin/subjects/{id}/erase`, erased everywhere: the live view that blanks on SubjectErased,
 * SQL, a warm-up and a blue/green rebuild from the archive; the archive still verifies.
 */
import { gunzipSync } from "node:zlib";
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from "@aws-sdk/client-kinesis";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { SubscribeCommand } from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { upcasters } from "../../events/upcasters.ts";
import { app as bankApp } from "../../functions/app.ts";
import { submitCommand } from "../../shared/api/intake.ts";
import { queryArchive } from "../../shared/archive/sql.ts";
import { kinesisClient, s3Client, snsClient, sqsClient } from "../../shared/aws/clients.ts";
import { watchBuses } from "../../shared/console/bus-watch.ts";
import { contractsOf } from "../../shared/domain/commands.ts";
import { warmUpProjection } from "../../shared/local-cloud/projection-ops.ts";
import { envNames } from "../../shared/plan.ts";
import { privacyEnv } from "../../shared/privacy/env.ts";
import { erasedText } from "../../shared/privacy/sealed.ts";
import type { AppDefinition } from "../../shared/topology.ts";
import { runCanon } from "../support/cli.ts";
import { removeDataDir, repoRoot, startSystem, type TestSystem, view, waitFor } from "../support/system.ts";

const name = "Ada Lovelace-7f3c";
const account = "pd-1";
const cacheTtlMs = 300;

/** The bank, with one more view that blanks the owner on SubjectErased (test/fixtures/owners-projection.ts). */
const app: AppDefinition = {
  ...bankApp,
  services: bankApp.services.map((s) =>
    s.name !== "accounts"
      ? s
      : {
          ...s,
          projections: [
            ...s.projections,
            {
              name: "owners",
              handler: "test/fixtures/owners-projection.ts",
              events: ["AccountOpened", "SubjectErased"],
              key: "accountId",
            },
            {
              // The same view, added later: warmed up from the archive only after the erasure.
              name: "owners-late",
              handler: "test/fixtures/owners-projection.ts",
              events: ["AccountOpened", "SubjectErased"],
              key: "accountId",
              warmUp: true,
            },
          ],
        },
  ),
};

let system: TestSystem;
let spy: { queueUrl: string; deadLetterUrl: string };

beforeAll(async () => {
  process.env[privacyEnv.keyCacheTtlMs] = String(cacheTtlMs); // the functions' key cache, and the erase's wait
  system = await startSystem({ app });
  spy = await subscribeSpy();
});

afterAll(async () => {
  await system?.stop();
  if (system) removeDataDir(system.dataDir);
  delete process.env[privacyEnv.keyCacheTtlMs];
});

/** A subscriber of the core topic whose queue dead-letters a message on its second receive. */
async function subscribeSpy() {
  const dlq = await sqsClient().send(
    new CreateQueueCommand({ QueueName: "pd-spy-dlq.fifo", Attributes: { FifoQueue: "true" } }),
  );
  const dlqArn = (
    await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }))
  ).Attributes?.QueueArn;
  const queue = await sqsClient().send(
    new CreateQueueCommand({
      QueueName: "pd-spy.fifo",
      Attributes: {
        FifoQueue: "true",
        VisibilityTimeout: "1",
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 1 }),
      },
    }),
  );
  const queueArn = (
    await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ["QueueArn"] }))
  ).Attributes?.QueueArn;
  await snsClient().send(
    new SubscribeCommand({
      TopicArn: system.resources.topicArns.get("core"),
      Protocol: "sqs",
      Endpoint: queueArn,
      Attributes: { RawMessageDelivery: "true" },
    }),
  );
  return { queueUrl: queue.QueueUrl as string, deadLetterUrl: dlq.QueueUrl as string };
}

/** Every record of the core stream, as text. */
async function streamRecords(): Promise<string[]> {
  const stream = system.resources.streamNames.get("core");
  const shards = (await kinesisClient().send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
  const texts: string[] = [];
  for (const shard of shards) {
    let iterator = (
      await kinesisClient().send(
        new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }),
      )
    ).ShardIterator;
    for (let page = 0; iterator && page < 20; page++) {
      const out = await kinesisClient().send(new GetRecordsCommand({ ShardIterator: iterator }));
      for (const record of out.Records ?? []) texts.push(Buffer.from(record.Data ?? []).toString("utf8"));
      if ((out.Records ?? []).length === 0) break;
      iterator = out.NextShardIterator;
    }
  }
  return texts;
}

/** Every object of the core archive bucket (gunzipped where gzip), as text. */
async function archiveObjects(): Promise<string[]> {
  const bucket = system.resources.archiveBuckets.get("core");
  const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return Promise.all(
    (listed.Contents ?? []).map(async ({ Key }) => {
      const body = await (
        await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key }))
      ).Body?.transformToByteArray();
      const bytes = Buffer.from(body ?? []);
      return (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString("utf8");
    }),
  );
}

const ownerQuery = `SELECT data FROM events WHERE type = 'AccountOpened' AND aggregate_id = '${account}'`;
/** The console's tail of the core bus: what it shows of the account's AccountOpened. */
async function tailedOwner(): Promise<unknown> {
  const watch = watchBuses(new Map([["core", system.resources.streamNames.get("core") as string]]), { pollMs: 50 });
  try {
    const event = await waitFor(
      async () => watch.recent().find((e) => e.type === "AccountOpened" && e.aggregateId === account),
      "the tail's AccountOpened",
    );
    return event.data?.owner;
  } finally {
    await watch.stop();
  }
}

const mentions = (texts: readonly string[], what: string) => texts.filter((t) => t.includes(what));
const canon = (...args: string[]) => runCanon(system.dataDir, ...args);
const owner = (path: string) => view<{ owner: string }>(system, path).then((item) => item?.owner);

describe("an account owner's name", () => {
  it("is accepted and readable in the views", async () => {
    const opened = await system.command("accounts", "OpenAccount", { accountId: account, owner: name });
    expect(opened.status).toBe("accepted");
    expect(JSON.stringify(opened)).not.toContain(name); // the outcome keeps the sealed event
    expect(
      await waitFor(
        async () => ((await owner(`accounts/balances/${account}`)) === name ? name : undefined),
        "balances",
      ),
    ).toBe(name);
    expect(
      await waitFor(async () => ((await owner(`accounts/owners/${account}`)) === name ? name : undefined), "owners"),
    ).toBe(name);
    expect(await tailedOwner()).toBe(name); // the console's tail opens it too
  });

  it("is in no stream record, only sealed", async () => {
    const records = await streamRecords();
    const ours = mentions(records, `"aggregateId":"${account}"`);
    expect(ours.length).toBeGreaterThan(0);
    expect(mentions(records, name)).toEqual([]);
    expect(ours.join("\n")).toMatch(/"owner":"pd1\.s\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"/);
    expect(ours.join("\n")).toContain('"personaldata":["owner"]');
  });

  it("is in no archive object", async () => {
    const objects = await waitFor(async () => {
      const found = await archiveObjects();
      return mentions(found, `"aggregateId":"${account}"`).length > 0 ? found : undefined;
    }, "the archived commit");
    expect(mentions(objects, name)).toEqual([]);
  });

  it("is in no dead letter of a topic subscriber", async () => {
    const receive = (url: string) =>
      sqsClient().send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    // The spy's queue dead-letters a message received once and not deleted (visible again after 1 s).
    const first = await waitFor(async () => {
      const got = (await receive(spy.queueUrl)).Messages ?? [];
      return got.length > 0 ? got : undefined;
    }, "the spy's messages");
    expect(
      mentions(
        first.map((m) => m.Body ?? ""),
        name,
      ),
    ).toEqual([]);
    const dead: string[] = [];
    await waitFor(async () => {
      await receive(spy.queueUrl); // the redrive happens on the receive past maxReceiveCount
      for (const message of (await receive(spy.deadLetterUrl)).Messages ?? []) dead.push(message.Body ?? "");
      return mentions(dead, '"type":"AccountOpened"').length > 0 ? true : undefined;
    }, "the AccountOpened dead-lettered");
    expect(mentions(dead, `"subject":"${account}"`).length).toBeGreaterThan(0);
    expect(mentions(dead, name)).toEqual([]);
  });

  it("is sealed on the command queue by the API, and opened by the command handler", async () => {
    // The API's intake, its queue pointed at a queue of the test's: what goes on a command queue.
    const spyQueue = await sqsClient().send(
      new CreateQueueCommand({ QueueName: "pd-commands-spy.fifo", Attributes: { FifoQueue: "true" } }),
    );
    const queueEnv = envNames.commandQueueUrl("accounts");
    const real = process.env[queueEnv];
    process.env[queueEnv] = spyQueue.QueueUrl;
    let answer: Awaited<ReturnType<typeof submitCommand>>;
    try {
      answer = await submitCommand(
        { app, contracts: contractsOf(app) },
        "accounts",
        "OpenAccount",
        {
          accountId: "pd-2",
          owner: name,
        },
        undefined,
      );
    } finally {
      process.env[queueEnv] = real;
    }
    expect(answer.status).toBe(202);
    const queued = await waitFor(async () => {
      const got = await sqsClient().send(
        new ReceiveMessageCommand({ QueueUrl: spyQueue.QueueUrl, WaitTimeSeconds: 1 }),
      );
      return got.Messages?.[0]?.Body;
    }, "the queued command");
    expect(queued).not.toContain(name);
    expect(JSON.parse(queued)).toMatchObject({
      personaldata: ["owner"],
      command: { type: "OpenAccount", accountId: "pd-2" },
    });

    // The very message, on the accounts command queue: its handler opens it and decides as sent.
    await sqsClient().send(
      new SendMessageCommand({
        QueueUrl: real,
        MessageBody: queued,
        MessageGroupId: "pd-2",
        MessageDeduplicationId: JSON.parse(queued).commandId,
      }),
    );
    expect(
      await waitFor(
        async () => ((await owner("accounts/balances/pd-2")) === name ? name : undefined),
        "pd-2's balance",
      ),
    ).toBe(name);
  });

  it("is never decided from a command whose sealed field was altered: it is dead-lettered", async () => {
    const commandId = "pd-altered-1";
    const body = JSON.stringify({
      commandId,
      service: "accounts",
      command: { type: "OpenAccount", accountId: "pd-3", owner: "Mallory" }, // listed as sealed, but plain
      personaldata: ["owner"],
      aggregateId: "pd-3",
      receivedAt: new Date().toISOString(),
      correlationId: commandId,
      causationId: commandId,
    });
    await sqsClient().send(
      new SendMessageCommand({
        QueueUrl: process.env[envNames.commandQueueUrl("accounts")],
        MessageBody: body,
        MessageGroupId: "pd-3",
        MessageDeduplicationId: commandId,
      }),
    );
    const deadLetter = system.resources.deadLetterQueueUrls.get("accounts-commands");
    const dead = await waitFor(
      async () => {
        const got = await sqsClient().send(new ReceiveMessageCommand({ QueueUrl: deadLetter, WaitTimeSeconds: 1 }));
        return got.Messages?.find((m) => m.Body?.includes(commandId));
      },
      "the altered command in the dead-letter queue",
      60_000,
    );
    expect(dead.Body).toBe(body);
    expect(await view(system, "accounts/balances/pd-3")).toBeUndefined();
  });

  it("is opened for SQL over the archive while its key exists", async () => {
    const { rows } = await queryArchive(
      (bus) => system.resources.archiveBuckets.get(bus) as string,
      ["core"],
      ownerQuery,
    );
    expect(JSON.stringify(rows)).toContain(name);
  });

  it("is erased everywhere once its subject is erased, and the archive still verifies", async () => {
    const response = await system.post(
      `/admin/subjects/${account}/erase`,
      { reason: "GDPR request 42" },
      { "x-canon-operator": "dpo@bank" },
    );
    expect(response.status).toBe(200);
    const erasure = await response.json();
    expect(erasure).toMatchObject({
      subject: account,
      erasedBy: "dpo@bank",
      erasedFor: "GDPR request 42",
      already: false,
    });

    // The live views that blank on SubjectErased: this test's, and the bank's balances.
    expect(
      await waitFor(
        async () => ((await owner(`accounts/owners/${account}`)) === erasedText ? true : undefined),
        "owners erased",
      ),
    ).toBe(true);
    const erasedBalance = async () => ((await owner(`accounts/balances/${account}`)) === erasedText ? true : undefined);
    expect(await waitFor(erasedBalance, "the bank's balances view erased")).toBe(true);

    // A warm-up after the erasure: the archive's sealed name reads as erased.
    const warmed = await warmUpProjection({
      app,
      plan: system.plan,
      resources: system.resources,
      repoRoot,
      upcasters,
      projection: "accounts.owners-late",
    });
    expect(warmed.events).toBeGreaterThan(0);
    expect(await owner(`accounts/owners-late/${account}`)).toBe(erasedText);
    expect(await tailedOwner()).toBe(erasedText);

    const sql = await canon(
      "archive",
      "sql",
      `SELECT data FROM events WHERE type = 'AccountOpened' AND aggregate_id = '${account}'`,
      "--json",
    );
    expect(JSON.parse(sql.stdout)[0].data).toContain(erasedText);
    expect(sql.stdout).not.toContain(name);

    // A rebuild from the archive (the replay a warm-up runs) folds the erased name.
    const rebuilt = await canon("projection", "rebuild", "accounts.balances");
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stderr).toContain("reads switched to");
    expect(await waitFor(erasedBalance, "the rebuilt balance erased")).toBe(true);

    const verified = await canon("archive", "verify");
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/core: complete/);

    const shown = await canon("subject", "show", account);
    expect(shown.stdout).toMatch(new RegExp(`${account}: erased at \\S+ by dpo@bank \\(GDPR request 42\\)`));
    const again = await canon("subject", "erase", account);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already erased/);
  });

  it("is not erased on a bad request, which is answered 400 with the reason", async () => {
    const spaced = await system.post("/admin/subjects/has%20space/erase", {});
    expect(spaced.status).toBe(400);
    expect(await spaced.json()).toEqual({
      error: 'subject id "has space" is not valid: 1 to 200 characters, no spaces',
    });
    const badBody = await system.post(`/admin/subjects/${account}/erase`, "{not json");
    expect(badBody.status).toBe(400);
    expect(await badBody.json()).toEqual({ error: "the body is not JSON" });
  });

  it("of an erased subject is never stored again", async () => {
    const reopened = await system.command("accounts", "OpenAccount", { accountId: account, owner: name });
    expect(reopened.status).toBe("rejected"); // the account exists; its rejection carries the command, blanked
    const records = await streamRecords();
    expect(mentions(records, name)).toEqual([]);
  });
});
