/** The control-plane fake, driven through the real AWS SDK v3 clients over the wire. */
import { CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from "@aws-sdk/client-cloudwatch";
import {
  LambdaClient,
  ListEventSourceMappingsCommand,
  paginateListEventSourceMappings,
  UpdateEventSourceMappingCommand,
} from "@aws-sdk/client-lambda";
import {
  GetResourcesCommand,
  paginateGetResources,
  ResourceGroupsTaggingAPIClient,
} from "@aws-sdk/client-resource-groups-tagging-api";
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FakeAwsControl, startFakeAwsControl } from "../support/fake-aws-control.ts";

const t0 = Date.UTC(2026, 0, 1);
const at = (seconds: number) => new Date(t0 + seconds * 1000);

let fake: FakeAwsControl;
let tick: number;

/** One set of clients; maxAttempts 1 so an injected throttle surfaces at once instead of being retried. */
function clients(endpoint: string | undefined = fake.url) {
  const config = {
    region: "eu-west-1",
    credentials: { accessKeyId: "x", secretAccessKey: "x" },
    maxAttempts: 1,
    ...(endpoint === undefined ? {} : { endpoint }),
  };
  return {
    cloudwatch: new CloudWatchClient(config),
    lambda: new LambdaClient(config),
    sfn: new SFNClient(config),
    ssm: new SSMClient(config),
    tagging: new ResourceGroupsTaggingAPIClient(config),
  };
}

/** The rejection a promise ends in (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the call to fail");
}

beforeEach(async () => {
  tick = 0;
  // A clock that moves one second per reading: start dates are distinct and known.
  fake = await startFakeAwsControl({ pageSize: 2, now: () => at(tick++) });
});

afterEach(async () => {
  await fake.close();
});

describe("SSM", () => {
  it("GetParameter answers the value, its version and a Date; a missing name is ParameterNotFound", async () => {
    const { ssm } = clients();
    fake.setParameter("/canon/dev/bus/main/stream-arn", "arn:one");
    fake.setParameter("/canon/dev/bus/main/stream-arn", "arn:two");

    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: "/canon/dev/bus/main/stream-arn" }));
    expect(Parameter).toMatchObject({ Name: "/canon/dev/bus/main/stream-arn", Value: "arn:two", Version: 2 });
    expect(Parameter?.LastModifiedDate).toEqual(at(1));
    expect(Parameter?.ARN).toBe("arn:aws:ssm:eu-west-1:123456789012:parameter/canon/dev/bus/main/stream-arn");

    const error = await rejection(ssm.send(new GetParameterCommand({ Name: "/nope" })));
    expect(error.name).toBe("ParameterNotFound");
    expect(error.$metadata?.httpStatusCode).toBe(400);
    expect(fake.calls).toEqual([
      { service: "ssm", operation: "GetParameter", input: { Name: "/canon/dev/bus/main/stream-arn" } },
      { service: "ssm", operation: "GetParameter", input: { Name: "/nope" } },
    ]);
  });
});

describe("Resource Groups Tagging API", () => {
  const fn = (name: string) => `arn:aws:lambda:eu-west-1:123456789012:function:${name}`;

  beforeEach(() => {
    fake.addFunction({ arn: fn("a"), tags: { "canon:app": "bank", "canon:role": "projection" } });
    fake.addFunction({ arn: fn("b"), tags: { "canon:app": "bank", "canon:role": "relay" } });
    fake.addFunction({ arn: fn("c"), tags: { "canon:app": "bank", "canon:role": "reactor" } });
    fake.addFunction({ arn: fn("other"), tags: { "canon:app": "shop" } });
    fake.addFunction({ arn: fn("d"), tags: { "canon:app": "bank" } });
  });

  it("GetResources filters by tags and resource type, in pages of the configured size", async () => {
    const { tagging } = clients();
    const pages = [];
    for await (const page of paginateGetResources(
      { client: tagging },
      { TagFilters: [{ Key: "canon:app", Values: ["bank"] }], ResourceTypeFilters: ["lambda:function"] },
    )) {
      pages.push(page.ResourceTagMappingList?.map((m) => m.ResourceARN));
    }
    expect(pages).toEqual([
      [fn("a"), fn("b")],
      [fn("c"), fn("d")],
    ]);

    const tokens = fake.calls.map((c) => (c.input as { PaginationToken?: string }).PaginationToken);
    expect(tokens[0]).toBeUndefined();
    expect(tokens[1]).toEqual(expect.any(String));
  });

  it("answers tags as Key/Value pairs, matches a key with any value, and ANDs filters", async () => {
    const { tagging } = clients();
    const out = await tagging.send(
      new GetResourcesCommand({
        TagFilters: [{ Key: "canon:app", Values: ["bank"] }, { Key: "canon:role" }],
        ResourcesPerPage: 1,
      }),
    );
    expect(out.ResourceTagMappingList).toEqual([
      {
        ResourceARN: fn("a"),
        Tags: [
          { Key: "canon:app", Value: "bank" },
          { Key: "canon:role", Value: "projection" },
        ],
      },
    ]);
    expect(out.PaginationToken).not.toBe("");

    const none = await tagging.send(new GetResourcesCommand({ ResourceTypeFilters: ["states:stateMachine"] }));
    expect(none).toMatchObject({ ResourceTagMappingList: [], PaginationToken: "" });
  });
});

describe("Lambda event source mappings", () => {
  const fnArn = "arn:aws:lambda:eu-west-1:123456789012:function:bank-projection";
  const queue = "arn:aws:sqs:eu-west-1:123456789012:bank-projection.fifo";

  beforeEach(() => {
    fake.addEventSourceMapping({
      uuid: "u-1",
      functionArn: fnArn,
      eventSourceArn: queue,
      state: "Enabled",
      batchSize: 10,
    });
    fake.addEventSourceMapping({ uuid: "u-2", functionArn: `${fnArn}-2`, eventSourceArn: queue, state: "Enabled" });
    fake.addEventSourceMapping({ uuid: "u-3", functionArn: fnArn, eventSourceArn: `${queue}-dlq`, state: "Disabled" });
  });

  it("ListEventSourceMappings filters by function name or ARN, with the SDK's field names", async () => {
    const { lambda } = clients();
    const byName = await lambda.send(new ListEventSourceMappingsCommand({ FunctionName: "bank-projection" }));
    expect(byName.EventSourceMappings).toEqual([
      { UUID: "u-1", FunctionArn: fnArn, EventSourceArn: queue, State: "Enabled", BatchSize: 10, LastModified: at(0) },
      { UUID: "u-3", FunctionArn: fnArn, EventSourceArn: `${queue}-dlq`, State: "Disabled", LastModified: at(2) },
    ]);
    expect(byName.NextMarker).toBeUndefined();

    const byArn = await lambda.send(new ListEventSourceMappingsCommand({ FunctionName: fnArn, EventSourceArn: queue }));
    expect(byArn.EventSourceMappings?.map((m) => m.UUID)).toEqual(["u-1"]);
  });

  it("pages with MaxItems and Marker", async () => {
    const { lambda } = clients();
    const pages = [];
    for await (const page of paginateListEventSourceMappings({ client: lambda, pageSize: 1 }, {})) {
      pages.push(page.EventSourceMappings?.map((m) => m.UUID));
    }
    expect(pages).toEqual([["u-1"], ["u-2"], ["u-3"]]);
    expect(fake.calls[1]?.input).toEqual({ MaxItems: 1, Marker: expect.any(String) });
  });

  it("UpdateEventSourceMapping with Enabled sets the state; an unknown UUID is ResourceNotFoundException", async () => {
    const { lambda } = clients();
    const disabled = await lambda.send(new UpdateEventSourceMappingCommand({ UUID: "u-1", Enabled: false }));
    expect(disabled).toMatchObject({ UUID: "u-1", State: "Disabled", LastModified: at(3) });
    const enabled = await lambda.send(new UpdateEventSourceMappingCommand({ UUID: "u-3", Enabled: true }));
    expect(enabled.State).toBe("Enabled");
    const listed = await lambda.send(new ListEventSourceMappingsCommand({ FunctionName: "bank-projection" }));
    expect(listed.EventSourceMappings?.map((m) => m.State)).toEqual(["Disabled", "Enabled"]);
    expect(fake.calls[0]).toEqual({
      service: "lambda",
      operation: "UpdateEventSourceMapping",
      input: { UUID: "u-1", Enabled: false },
    });

    const error = await rejection(lambda.send(new UpdateEventSourceMappingCommand({ UUID: "nope", Enabled: true })));
    expect(error.name).toBe("ResourceNotFoundException");
    expect(error.$metadata?.httpStatusCode).toBe(404);
  });
});

describe("CloudWatch", () => {
  const metric = { namespace: "AWS/Lambda", name: "Errors", stat: "Sum" };
  const query = (
    id: string,
    dimensions: Record<string, string>,
    extra: Partial<MetricDataQuery> = {},
  ): MetricDataQuery => ({
    Id: id,
    MetricStat: {
      Metric: {
        Namespace: "AWS/Lambda",
        MetricName: "Errors",
        Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
      },
      Period: 60,
      Stat: "Sum",
    },
    ...extra,
  });

  beforeEach(() => {
    fake.setMetric({ ...metric, dimensions: { FunctionName: "a", Resource: "a" } }, [
      { t: at(0), value: 1 },
      { t: at(60), value: 2 },
      { t: at(120), value: 3 },
      { t: at(180), value: 4 },
    ]);
    fake.setMetric({ ...metric, dimensions: { FunctionName: "b" } }, [{ t: at(60), value: 50 }]);
  });

  it("GetMetricData answers the matching series in [StartTime, EndTime), newest first, with Dates", async () => {
    const { cloudwatch } = clients();
    const out = await cloudwatch.send(
      new GetMetricDataCommand({
        StartTime: at(60),
        EndTime: at(180),
        MetricDataQueries: [
          // Dimension order does not matter; the set must match exactly.
          query("a", { Resource: "a", FunctionName: "a" }, { Label: "errors of a" }),
          query("b", { FunctionName: "b" }),
          query("partial", { FunctionName: "a" }),
          query("hidden", { FunctionName: "b" }, { ReturnData: false }),
        ],
      }),
    );
    expect(out.MetricDataResults).toEqual([
      { Id: "a", Label: "errors of a", Timestamps: [at(120), at(60)], Values: [3, 2], StatusCode: "Complete" },
      { Id: "b", Label: "Errors", Timestamps: [at(60)], Values: [50], StatusCode: "Complete" },
      { Id: "partial", Label: "Errors", Timestamps: [], Values: [], StatusCode: "Complete" },
    ]);
    expect(fake.calls[0]?.input).toMatchObject({ StartTime: (t0 + 60_000) / 1000, EndTime: (t0 + 180_000) / 1000 });
  });

  it("answers no points for another stat, and TimestampAscending oldest first", async () => {
    const { cloudwatch } = clients();
    const average = query("avg", { FunctionName: "b" });
    if (average.MetricStat) average.MetricStat.Stat = "Average";
    const out = await cloudwatch.send(
      new GetMetricDataCommand({
        StartTime: at(0),
        EndTime: at(600),
        ScanBy: "TimestampAscending",
        MetricDataQueries: [average, query("a", { FunctionName: "a", Resource: "a" })],
      }),
    );
    expect(out.MetricDataResults?.map((r) => r.Values)).toEqual([[], [1, 2, 3, 4]]);
  });

  it("refuses Expression queries loudly", async () => {
    const { cloudwatch } = clients();
    const error = await rejection(
      cloudwatch.send(
        new GetMetricDataCommand({
          StartTime: at(0),
          EndTime: at(600),
          MetricDataQueries: [query("a", { FunctionName: "b" }), { Id: "sum", Expression: "SUM(METRICS())" }],
        }),
      ),
    );
    expect(error.name).toBe("UnknownOperationException");
    expect(error.message).toMatch(/Expression/);
  });
});

describe("Step Functions", () => {
  const machineArn = "arn:aws:states:eu-west-1:123456789012:stateMachine:bank-warm-up";
  const executionArn = (name: string) => `arn:aws:states:eu-west-1:123456789012:execution:bank-warm-up:${name}`;

  beforeEach(() => {
    fake.addStateMachine({ name: "bank-warm-up", arn: machineArn });
  });

  it("ListStateMachines answers the machines", async () => {
    const { sfn } = clients();
    const out = await sfn.send(new ListStateMachinesCommand({}));
    expect(out.stateMachines).toEqual([
      { stateMachineArn: machineArn, name: "bank-warm-up", type: "STANDARD", creationDate: at(0) },
    ]);
  });

  it("StartExecution derives the execution ARN, records ExecutionStarted, and refuses unknown machines", async () => {
    const { sfn } = clients();
    const started = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: machineArn, name: "run-1", input: '{"n":1}' }),
    );
    expect(started).toMatchObject({ executionArn: executionArn("run-1"), startDate: at(1) });
    expect(fake.executions()).toEqual([
      {
        arn: executionArn("run-1"),
        name: "run-1",
        stateMachineArn: machineArn,
        status: "RUNNING",
        startDate: at(1),
        input: '{"n":1}',
        history: [
          {
            timestamp: at(1),
            type: "ExecutionStarted",
            id: 1,
            previousEventId: 0,
            executionStartedEventDetails: { input: '{"n":1}' },
          },
        ],
      },
    ]);

    const missing = await rejection(
      sfn.send(new StartExecutionCommand({ stateMachineArn: `${machineArn}-nope`, name: "run-1" })),
    );
    expect(missing.name).toBe("StateMachineDoesNotExist");
  });

  it("refuses a name already used, except the idempotent retry of a running one with the same input", async () => {
    const { sfn } = clients();
    const first = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: machineArn, name: "run-1", input: "{}" }),
    );
    const retry = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: machineArn, name: "run-1", input: "{}" }),
    );
    expect(retry).toMatchObject({ executionArn: first.executionArn, startDate: first.startDate });

    const otherInput = await rejection(
      sfn.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: "run-1", input: '{"x":1}' })),
    );
    expect(otherInput.name).toBe("ExecutionAlreadyExists");

    fake.updateExecution(executionArn("run-1"), { status: "SUCCEEDED" });
    const closed = await rejection(
      sfn.send(new StartExecutionCommand({ stateMachineArn: machineArn, name: "run-1", input: "{}" })),
    );
    expect(closed.name).toBe("ExecutionAlreadyExists");
    expect(fake.executions()).toHaveLength(1);
  });

  it("ListExecutions answers newest first, filtered by status, in pages", async () => {
    const { sfn } = clients();
    for (const name of ["r1", "r2", "r3", "r4"]) {
      await sfn.send(new StartExecutionCommand({ stateMachineArn: machineArn, name }));
    }
    fake.updateExecution(executionArn("r2"), { status: "FAILED", error: "Boom", cause: "it broke" });

    const page1 = await sfn.send(new ListExecutionsCommand({ stateMachineArn: machineArn }));
    expect(page1.executions?.map((e) => e.name)).toEqual(["r4", "r3"]);
    const page2 = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: machineArn, nextToken: page1.nextToken }),
    );
    expect(page2.executions?.map((e) => e.name)).toEqual(["r2", "r1"]);
    expect(page2.nextToken).toBeUndefined();

    const failed = await sfn.send(new ListExecutionsCommand({ stateMachineArn: machineArn, statusFilter: "FAILED" }));
    expect(failed.executions).toEqual([
      {
        executionArn: executionArn("r2"),
        stateMachineArn: machineArn,
        name: "r2",
        status: "FAILED",
        startDate: at(2),
        stopDate: at(5),
      },
    ]);
    const one = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: machineArn, statusFilter: "RUNNING", maxResults: 1 }),
    );
    expect(one.executions?.map((e) => e.name)).toEqual(["r4"]);

    const unknown = await rejection(sfn.send(new ListExecutionsCommand({ stateMachineArn: `${machineArn}-nope` })));
    expect(unknown.name).toBe("StateMachineDoesNotExist");
    const badToken = await rejection(
      sfn.send(new ListExecutionsCommand({ stateMachineArn: machineArn, nextToken: "x" })),
    );
    expect(badToken.name).toBe("InvalidToken");
  });

  it("DescribeExecution and GetExecutionHistory answer what the test set, history in either order", async () => {
    const { sfn } = clients();
    const { executionArn: arn = "" } = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: machineArn, name: "run-1", input: '{"n":1}' }),
    );
    const [started] = fake.executions()[0]?.history ?? [];
    if (started === undefined) throw new Error("no ExecutionStarted event");
    fake.updateExecution(arn, {
      status: "SUCCEEDED",
      stopDate: at(30),
      output: '{"warmed":3}',
      history: [
        started,
        {
          timestamp: at(10),
          type: "TaskSucceeded",
          id: 2,
          previousEventId: 1,
          taskSucceededEventDetails: { resourceType: "lambda", resource: "invoke", output: '{"warmed":3}' },
        },
        {
          timestamp: at(20),
          type: "LambdaFunctionSucceeded",
          id: 3,
          previousEventId: 2,
          lambdaFunctionSucceededEventDetails: { output: '"ok"' },
        },
        {
          timestamp: at(30),
          type: "ExecutionSucceeded",
          id: 4,
          previousEventId: 3,
          executionSucceededEventDetails: { output: '{"warmed":3}' },
        },
      ],
    });

    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    expect(described).toMatchObject({
      executionArn: arn,
      stateMachineArn: machineArn,
      name: "run-1",
      status: "SUCCEEDED",
      startDate: at(1),
      stopDate: at(30),
      input: '{"n":1}',
      output: '{"warmed":3}',
    });

    const newest = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true, maxResults: 1 }),
    );
    expect(newest.events).toEqual([
      {
        timestamp: at(30),
        type: "ExecutionSucceeded",
        id: 4,
        previousEventId: 3,
        executionSucceededEventDetails: { output: '{"warmed":3}' },
      },
    ]);
    const rest = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true, nextToken: newest.nextToken }),
    );
    expect(rest.events?.map((e) => e.id)).toEqual([3, 2]);
    expect(rest.events?.[1]?.taskSucceededEventDetails?.output).toBe('{"warmed":3}');
    const oldest = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn }));
    expect(oldest.events?.map((e) => e.type)).toEqual(["ExecutionStarted", "TaskSucceeded"]);
    expect(oldest.events?.[0]?.timestamp).toEqual(at(1));

    const missing = await rejection(sfn.send(new DescribeExecutionCommand({ executionArn: executionArn("nope") })));
    expect(missing.name).toBe("ExecutionDoesNotExist");
  });
});

describe("failures and the unexpected", () => {
  it("fail() makes an operation answer the given error until cleared", async () => {
    const { ssm } = clients();
    fake.setParameter("p", "v");
    fake.fail("ssm", "GetParameter", { status: 400, type: "ThrottlingException", message: "Rate exceeded" });
    const error = await rejection(ssm.send(new GetParameterCommand({ Name: "p" })));
    expect(error.name).toBe("ThrottlingException");
    expect(error.message).toBe("Rate exceeded");
    expect(error.$metadata?.httpStatusCode).toBe(400);

    fake.fail("ssm", "GetParameter", undefined);
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: "p" }));
    expect(Parameter?.Value).toBe("v");
    expect(fake.calls.map((c) => c.operation)).toEqual(["GetParameter", "GetParameter"]);
  });

  it("an operation it does not model is UnknownOperationException naming it", async () => {
    const { ssm } = clients();
    const error = await rejection(ssm.send(new PutParameterCommand({ Name: "p", Value: "v" })));
    expect(error.name).toBe("UnknownOperationException");
    expect(error.message).toContain("PutParameter");

    const path = await fetch(`${fake.url}/2015-03-31/functions`);
    expect(path.status).toBe(400);
    expect(await path.json()).toEqual({
      __type: "UnknownOperationException",
      message: "fake: no operation for GET /2015-03-31/functions",
    });

    const target = await fetch(fake.url, {
      method: "POST",
      headers: { "x-amz-target": "Kinesis_20131202.ListStreams", "content-type": "application/x-amz-json-1.1" },
      body: "{}",
    });
    expect(await target.json()).toMatchObject({ __type: "UnknownOperationException" });
  });

  it("malformed JSON is SerializationException", async () => {
    const response = await fetch(fake.url, {
      method: "POST",
      headers: { "x-amz-target": "AmazonSSM.GetParameter", "content-type": "application/x-amz-json-1.1" },
      body: "{not json",
    });
    expect(response.status).toBe(400);
    expect(response.headers.get("x-amzn-errortype")).toBe("SerializationException");
    expect(await response.json()).toMatchObject({ __type: "SerializationException" });
  });
});

describe("env", () => {
  it("names an endpoint per service that clients without an explicit endpoint follow", async () => {
    expect(Object.keys(fake.env).sort()).toEqual([
      "AWS_ENDPOINT_URL_CLOUDWATCH",
      "AWS_ENDPOINT_URL_LAMBDA",
      "AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API",
      "AWS_ENDPOINT_URL_SFN",
      "AWS_ENDPOINT_URL_SSM",
    ]);
    const saved = Object.fromEntries(Object.keys(fake.env).map((name) => [name, process.env[name]]));
    Object.assign(process.env, fake.env);
    try {
      const { cloudwatch, lambda, sfn, ssm, tagging } = clients(undefined);
      fake.setParameter("p", "v");
      await ssm.send(new GetParameterCommand({ Name: "p" }));
      await sfn.send(new ListStateMachinesCommand({}));
      await tagging.send(new GetResourcesCommand({}));
      await lambda.send(new ListEventSourceMappingsCommand({}));
      await cloudwatch.send(
        new GetMetricDataCommand({
          StartTime: at(0),
          EndTime: at(60),
          MetricDataQueries: [{ Id: "m", MetricStat: { Metric: { MetricName: "x" }, Period: 60, Stat: "Sum" } }],
        }),
      );
      expect(fake.calls.map((c) => c.service)).toEqual(["ssm", "sfn", "tagging", "lambda", "cloudwatch"]);
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
