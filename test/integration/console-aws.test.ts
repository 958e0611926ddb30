/**
 * The console's AWS source over the wire. The "deployed app" is the bank running on the
 * embedded local cloud (real Kinesis, SQS, DynamoDB and S3 emulators, the plan's names, the
 * runner processing events); the control plane that has no npm emulator (CloudWatch, Lambda's
 * event source mappings, Step Functions, SSM, the tagging API) is the loopback fake in
 * test/support/fake-aws-control.ts, set up as CDK would deploy the app.
 */
import { execFile, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { LambdaClient, UpdateEventSourceMappingCommand } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleCommand } from "../../bin/commands/console.ts";
import { app } from "../../functions/app.ts";
import { consoleActions } from "../../infra/console-access.ts";
import { type CallCounts, countCallsEnv } from "../../shared/aws/call-counter.ts";
import { warmUpName } from "../../shared/aws/deployed-names.ts";
import { discoverDeployedApp } from "../../shared/console/aws-discovery.ts";
import { awsConsoleSource } from "../../shared/console/aws-source.ts";
import { serveConsole } from "../../shared/console/server.ts";
import type { ConsoleSource, Overview, ReplayJob } from "../../shared/console/source.ts";
import { planApp } from "../../shared/plan.ts";
import { type FakeAwsControl, startFakeAwsControl } from "../support/fake-aws-control.ts";
import { deployToFake, functionName, region } from "../support/fake-deployment.ts";
import {
  putDeadLetter,
  removeDataDir,
  repoRoot,
  startSystem,
  type TestSystem,
  tempDataDir,
  waitFor,
} from "../support/system.ts";

describe("the console's AWS source, against the emulators and a fake control plane", () => {
  let system: TestSystem;
  let fake: FakeAwsControl;
  let source: ConsoleSource;
  const savedEnv = { ...process.env };
  const relayId = () => planApp(app).functions.find((f) => f.role === "relay" && f.source.kind === "kinesis")?.id ?? "";

  beforeAll(async () => {
    system = await startSystem();
    // Small pages, so every listing (tags, mappings, executions) is read past its first page.
    fake = await startFakeAwsControl({ pageSize: 3 });
    Object.assign(process.env, fake.env);
    deployToFake(fake, system);
    // Another app's mapping in the same region: listed too, and ignored.
    fake.addEventSourceMapping({
      uuid: "foreign",
      functionArn: `arn:aws:lambda:${region}:000000000000:function:other-app-consumer`,
      eventSourceArn: `arn:aws:sqs:${region}:000000000000:other-queue`,
      state: "Disabled",
    });
    const now = Date.now();
    const minute = (k: number) => new Date(Math.floor(now / 60_000) * 60_000 - k * 60_000);
    const stream = system.plan.streams.find((s) => s.bus === "core")?.name ?? "";
    fake.setMetric(
      { namespace: "AWS/Kinesis", name: "IncomingRecords", dimensions: { StreamName: stream }, stat: "Sum" },
      [
        { t: minute(3), value: 120 },
        { t: minute(2), value: 600 },
      ],
    );
    fake.setMetric(
      {
        namespace: "AWS/Lambda",
        name: "IteratorAge",
        dimensions: { FunctionName: functionName(relayId()) },
        stat: "Maximum",
      },
      [
        { t: minute(2), value: 1_500 },
        { t: minute(1), value: 120_000 },
      ],
    );
    source = awsConsoleSource({ app, plan: system.plan, region, sampleEveryMs: 300, metricsEveryMs: 300 });
  });

  afterAll(async () => {
    await source?.stop();
    await fake?.close();
    await system?.stop();
    removeDataDir(system?.dataDir ?? "");
    for (const key of Object.keys(fake?.env ?? {})) delete process.env[key];
    Object.assign(process.env, savedEnv);
  });

  it("shows every projection's state from its mapping, its queue and its table", async () => {
    const overview = await source.overview();
    expect(overview.target).toEqual({ kind: "aws", region });
    expect(overview.warnings).toBeUndefined();
    const byName = new Map(overview.projections.map((p) => [p.name, p]));
    expect(byName.get("accounts.balances")).toMatchObject({ status: "live", canRebuild: false, canWarmUp: false });
    expect(byName.get("accounts.activity")).toMatchObject({ status: "detached", canWarmUp: true, canRebuild: false });
    for (const p of overview.projections) {
      expect(p.items, p.name).toBeDefined();
      expect(p.queue.visible + p.queue.inFlight, p.name).toBeGreaterThanOrEqual(0);
    }
    const fns = new Map(overview.functions.map((f) => [f.id, f.status]));
    expect(fns.get(relayId())).toBe("running");
    expect([...fns.values()]).toContain("served by the API");
    expect(overview.archive.map((a) => a.bus).sort()).toEqual([...system.resources.archiveBuckets.keys()].sort());
  });

  it("tails a command's event from the stream, and counts it in the archive's lag window", async () => {
    const opened = await system.command("accounts", "OpenAccount", { accountId: "aws-tail-1", owner: "Ada" });
    expect(opened.status).toBe("accepted");
    const event = await waitFor(
      async () => source.recentEvents({ aggregate: "aws-tail-1" }, 10)[0],
      "the event in the AWS source's tail",
    );
    expect(event).toMatchObject({ verdict: "accepted", aggregateId: "aws-tail-1", service: "accounts" });
    const bus = (await source.buses()).find((b) => b.bus === "core");
    expect(bus?.shards.reduce((sum, s) => sum + s.records, 0)).toBeGreaterThan(0);
  });

  it("draws the charts from CloudWatch and reads the relay's lag as its iterator age", async () => {
    const samples = await waitFor(async () => {
      const series = source.series();
      return series.length >= 3 ? series : undefined;
    }, "CloudWatch samples");
    expect(samples.every((s) => s.lagUnit === "ms")).toBe(true);
    expect(samples.map((s) => s.buses.core?.recordsPerSecond)).toEqual([2, 10, 0]);
    expect(samples.map((s) => s.buses.core?.relayLag)).toEqual([0, 1_500, 120_000]);
    const shards = (await source.buses()).find((b) => b.bus === "core")?.shards ?? [];
    // The relay's age (2 min) is its oldest unread record over all shards: the shard the
    // tail test's event went to counts it; a shard where nothing arrived since is caught up.
    expect(shards.reduce((sum, s) => sum + s.relay.records, 0)).toBeGreaterThanOrEqual(1);
    for (const shard of shards) {
      expect(shard.relay.records === 0 ? shard.relay.ageMs : shard.relay).toEqual(
        shard.relay.records === 0 ? 0 : expect.objectContaining({ ageMs: 120_000, fromAge: true }),
      );
    }
  });

  it("starts a warm-up as a state machine execution, shows its progress, and refuses what it cannot do", async () => {
    await expect(source.startReplay("accounts.activity", "rebuild")).rejects.toMatchObject({ status: 409 });
    await expect(source.startReplay("accounts.nope", "warm-up")).rejects.toMatchObject({ status: 404 });
    await expect(source.startReplay("accounts.balances", "warm-up")).rejects.toMatchObject({ status: 409 });

    const job = await source.startReplay("accounts.activity", "warm-up");
    expect(job).toMatchObject({ projection: "accounts.activity", action: "warm-up", state: "running" });
    const [execution] = fake.executions();
    expect(execution?.stateMachineArn).toContain(warmUpName(system.plan.prefix, "accounts-activity"));
    await expect(source.startReplay("accounts.activity", "warm-up")).rejects.toThrow(/already running/);

    const chunk = { done: false, events: 7, cursor: { events: 7, objects: 1 } };
    fake.updateExecution(execution?.arn ?? "", {
      history: [
        ...(execution?.history ?? []),
        {
          id: 2,
          timestamp: new Date(),
          type: "LambdaFunctionSucceeded",
          lambdaFunctionSucceededEventDetails: { output: JSON.stringify(chunk) },
        },
      ],
    });
    const running = await waitFor(async () => {
      const found = source.replays().find((j: ReplayJob) => j.id === execution?.name);
      return found?.progress?.events === 7 ? found : undefined;
    }, "the warm-up's progress");
    expect(running.messages.at(-1)).toMatch(/chunk applied 7 events/);
    expect((await source.projections()).find((p) => p.name === "accounts.activity")).toMatchObject({
      status: "warming up",
      canWarmUp: false,
    });

    // The state machine attaches the consumer when it is done: the projection is live.
    await new LambdaClient({ region }).send(
      new UpdateEventSourceMappingCommand({ UUID: "uuid-accounts-activity", Enabled: true }),
    );
    fake.updateExecution(execution?.arn ?? "", { status: "SUCCEEDED", stopDate: new Date() });
    await waitFor(async () => {
      const p = (await source.projections()).find((x) => x.name === "accounts.activity");
      return p?.status === "live" ? p : undefined;
    }, "accounts.activity live");
  });

  it("redrives through the projection's own table and queue, and refuses when nothing is parked", async () => {
    await expect(source.redrive("accounts.balances", "Account#nobody", {})).rejects.toMatchObject({ status: 409 });
    await expect(source.redrive("accounts.nope", "x", {})).rejects.toMatchObject({ status: 404 });
    const report = await source.deadLetters();
    expect(report.parked).toEqual([]);
  });

  it("keeps answering when a control-plane call is denied, and says what failed", async () => {
    const denied = { status: 400, type: "AccessDeniedException", message: "not allowed" };
    fake.fail("cloudwatch", "GetMetricData", denied);
    fake.fail("lambda", "ListEventSourceMappings", denied);
    try {
      const overview = await waitFor(async () => {
        const o = await source.overview();
        const text = (o.warnings ?? []).join("\n");
        return /CloudWatch metrics: AccessDenied/.test(text) && /event source mappings: AccessDenied/.test(text)
          ? o
          : undefined;
      }, "warnings for the denied calls");
      // Without mappings a consumer's state is unknown: shown as stopped, never as live.
      expect(overview.projections.every((p) => p.status !== "live")).toBe(true);
      expect(overview.archive.length).toBeGreaterThan(0);
    } finally {
      fake.fail("cloudwatch", "GetMetricData", undefined);
      fake.fail("lambda", "ListEventSourceMappings", undefined);
    }
  });

  it("lists what the plan has and the account does not", async () => {
    const ghost = planApp({ ...app, prefix: "ghost" });
    const deployed = await discoverDeployedApp(ghost, region);
    expect(deployed.functions.size).toBe(0);
    expect(deployed.missing).toEqual(
      expect.arrayContaining([`queue ${ghost.queues[0]?.name}`, "function accounts-activity"]),
    );
    expect(deployed.missing.some((m) => m.startsWith("archive bucket of core"))).toBe(true);
  });

  it("serves the page and the admin API, and refuses a cross-site steering request", async () => {
    const served = await serveConsole({
      source: awsConsoleSource({ app, plan: system.plan, region, sampleEveryMs: 500, metricsEveryMs: 500 }),
      repoRoot,
      host: "127.0.0.1",
      port: 0,
    });
    try {
      expect((await fetch(`${served.url}/`)).status).toBe(200);
      const overview = (await (await fetch(`${served.url}/_canon/api/overview`)).json()) as Overview;
      expect(overview.target.kind).toBe("aws");
      const hostile = await fetch(`${served.url}/_canon/api/projections/accounts.activity/warm-up`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: "https://evil.example" },
        body: "{}",
      });
      expect(hostile.status).toBe(403);
      const rebuild = await fetch(`${served.url}/_canon/api/projections/accounts.balances/rebuild`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(rebuild.status).toBe(409);
      expect(((await rebuild.json()) as { error: string }).error).toMatch(/local cloud only/);
    } finally {
      await served.stop();
    }
  });

  it("`canon console --aws` serves the deployed app until Ctrl-C, and exits 1 when nothing is deployed", async () => {
    const env = { ...process.env, AWS_REGION: region };
    const child = spawn(process.execPath, ["bin/canon.ts", "console", "--aws", "--port", "0"], { cwd: repoRoot, env });
    let out = "";
    child.stdout.on("data", (chunk) => (out += String(chunk)));
    child.stderr.on("data", (chunk) => (out += String(chunk)));
    const url = await waitFor(
      async () => /console +(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1],
      "the console's URL",
      60_000,
    );
    const overview = (await (await fetch(`${url}/_canon/api/overview`)).json()) as Overview;
    expect(overview.prefix).toBe(system.plan.prefix);
    // `canon status` reads it like a local console; exit 0: nothing parked or dead-lettered.
    const status = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(process.execPath, ["bin/canon.ts", "status", "--url", url], { cwd: repoRoot, env }, (error, stdout) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
      ),
    );
    expect(status.stdout).toMatch(/\(deployed, AWS us-east-1\)/);
    expect(status.stdout).toMatch(/accounts\.activity/);
    expect(status.code).toBe(0);
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.kill("SIGINT");
    expect(await exited).toBe(0);

    const empty = await startFakeAwsControl();
    try {
      const lonely = spawn(process.execPath, ["bin/canon.ts", "console", "--aws"], {
        cwd: repoRoot,
        env: { ...env, ...empty.env },
      });
      let said = "";
      lonely.stderr.on("data", (chunk) => (said += String(chunk)));
      const code = await new Promise<number | null>((resolve) => lonely.once("exit", resolve));
      expect(code).toBe(1);
      expect(said).toMatch(/no function tagged canon:app=/);
    } finally {
      await empty.close();
    }
  });
});

describe("canon status --aws", () => {
  it("is a one-shot health check of the deployed app: its status, then an exit code", async () => {
    const system = await startSystem();
    const fake = await startFakeAwsControl();
    try {
      deployToFake(fake, system);
      const env = { ...process.env, ...fake.env, AWS_REGION: region };
      const run = (...args: string[]) =>
        new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
          execFile(
            process.execPath,
            ["bin/canon.ts", "status", ...args],
            { cwd: repoRoot, env },
            (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
          ),
        );
      const text = await run("--aws");
      expect(text.stderr).toBe("");
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/^canon \(deployed, AWS us-east-1\)\n/);
      expect(text.stdout).toMatch(/accounts\.activity .*detached/);
      const json = JSON.parse((await run("--aws", "--json")).stdout) as Overview;
      expect(json.target).toEqual({ kind: "aws", region });

      // A dead-lettered command is something to act on: exit 3.
      await putDeadLetter(system, "accounts-commands", { body: "{}", group: "g", deduplicationId: "dead-1" });
      expect((await run("--aws")).code).toBe(3);

      expect((await run("--aws", "--url", "http://127.0.0.1:1")).code).toBe(2);
      expect((await run("--aws", "--region", "mars")).code).toBe(2);
      const empty = await startFakeAwsControl();
      try {
        const lonely = await new Promise<{ code: number; stderr: string }>((resolve) =>
          execFile(
            process.execPath,
            ["bin/canon.ts", "status", "--aws"],
            { cwd: repoRoot, env: { ...env, ...empty.env } },
            (error, _stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stderr }),
          ),
        );
        expect(lonely.code).toBe(1);
        expect(lonely.stderr).toMatch(/no function tagged canon:app=canon/);
      } finally {
        await empty.close();
      }
    } finally {
      await fake.close();
      await system.stop();
      removeDataDir(system.dataDir);
    }
  });
});

describe("the operator policy and what the console calls", () => {
  /** The IAM action behind an SDK call, as shared/aws/call-counter.ts names calls (`Client.Operation`). */
  const iamAction = (call: string): string => {
    const [client = "", operation = ""] = call.split(".");
    if (client === "S3") return operation === "ListObjectsV2" ? "s3:ListBucket" : `s3:${operation}`;
    const service: Record<string, string> = {
      Kinesis: "kinesis",
      SQS: "sqs",
      DynamoDB: "dynamodb",
      CloudWatch: "cloudwatch",
      Lambda: "lambda",
      SFN: "states",
      SSM: "ssm",
      ResourceGroupsTaggingAPI: "tag",
    };
    return `${service[client] ?? client}:${operation}`;
  };

  it("grants every call `canon console --aws` makes: reading, a warm-up, sending dead letters back", async () => {
    const system = await startSystem();
    const fake = await startFakeAwsControl();
    const counts = tempDataDir("console-calls");
    try {
      deployToFake(fake, system);
      await putDeadLetter(system, "accounts-commands", { body: "{}", group: "g", deduplicationId: "dead-1" });
      const child = spawn(process.execPath, ["bin/canon.ts", "console", "--aws", "--port", "0"], {
        cwd: repoRoot,
        env: { ...process.env, ...fake.env, AWS_REGION: region, [countCallsEnv]: counts },
      });
      let out = "";
      child.stdout.on("data", (chunk) => (out += String(chunk)));
      child.stderr.on("data", (chunk) => (out += String(chunk)));
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      const url = await waitFor(async () => /console +(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1], "the URL", 60_000);
      const post = (path: string, body: object) =>
        fetch(`${url}/_canon/api/${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      await waitFor(async () => {
        const o = (await (await fetch(`${url}/_canon/api/overview`)).json()) as Overview;
        return o.projections.length > 0 ? o : undefined;
      }, "an overview");
      await fetch(`${url}/_canon/api/commands?limit=5`);
      await fetch(`${url}/_canon/api/series`);
      expect((await post("projections/accounts.activity/warm-up", {})).status).toBe(202);
      expect((await post("queues/accounts-commands/move-dead-letters", {})).status).toBe(200);
      expect((await post("projections/accounts.balances/redrive", { aggregate: "nobody" })).status).toBe(409);
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // a CloudWatch read and a sample or two
      child.kill("SIGINT");
      expect(await exited).toBe(0);

      const called = new Set<string>();
      for (const file of readdirSync(counts)) {
        const { counts: byCall } = JSON.parse(readFileSync(join(counts, file), "utf8")) as CallCounts;
        for (const call of Object.keys(byCall)) called.add(iamAction(call));
      }
      const granted = new Set<string>(Object.values(consoleActions).flat());
      // It did what it is for: the write side and the control plane were both exercised.
      expect([...called]).toEqual(
        expect.arrayContaining([
          "sqs:SendMessage",
          "sqs:DeleteMessage",
          "states:StartExecution",
          "cloudwatch:GetMetricData",
          "kinesis:GetRecords",
          "dynamodb:DescribeTable",
        ]),
      );
      expect([...called].filter((action) => !granted.has(action))).toEqual([]);
    } finally {
      await fake.close();
      await system.stop();
      removeDataDir(system.dataDir);
      removeDataDir(counts);
    }
  });
});

describe("canon console's arguments", () => {
  it("exits 2 with the reason for what it cannot take, 0 for --help", async () => {
    expect(await consoleCommand([], repoRoot)).toBe(2);
    expect(await consoleCommand(["--bogus"], repoRoot)).toBe(2);
    expect(await consoleCommand(["--aws", "--port", "http"], repoRoot)).toBe(2);
    expect(await consoleCommand(["--aws", "--port", "70000"], repoRoot)).toBe(2);
    expect(await consoleCommand(["--aws", "--region", "../../etc/passwd"], repoRoot)).toBe(2);
    expect(await consoleCommand(["--help"], repoRoot)).toBe(0);
  });
});
