/**
 * Test support: a loopback fake of the AWS control-plane APIs that have no npm emulator (CloudWatch GetMetricData,
 * Step Functions, SSM GetParameter, the Resource Groups Tagging API, Lambda event source mappings), so code that
 * reads a deployed system can be tested over the wire with the real AWS SDK v3 clients.
 *
 * It speaks the protocols those clients use (checked against the installed clients, not from memory):
 * - awsJson1_0 (CloudWatch, Step Functions) and awsJson1_1 (SSM, tagging): `POST /`, `X-Amz-Target: <prefix>.<Op>`,
 *   `Content-Type: application/x-amz-json-1.<n>`; timestamps are epoch seconds (numbers) both ways.
 * - restJson1 (Lambda): operations by method and path, inputs from query, path and JSON body.
 * Errors are HTTP 4xx with `{"__type": "<Name>", "message": "..."}` and an `x-amzn-errortype` header; the SDK names
 * the thrown error after `__type` (JSON RPC) or the header (REST JSON), so `error.name` is the type.
 *
 * Anything it does not model answers 400 UnknownOperationException naming what was asked, so a test that reaches for
 * something unexpected fails loudly instead of getting an empty answer.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { HistoryEventType } from "@aws-sdk/client-sfn";

export type FakeService = "cloudwatch" | "lambda" | "sfn" | "ssm" | "tagging";

export interface FakeMetricPoint {
  readonly t: Date;
  readonly value: number;
}

/** One Step Functions history event: the SDK's field names, for the subset of event details a reader needs. */
export interface FakeHistoryEvent {
  readonly timestamp: Date;
  readonly type: HistoryEventType;
  readonly id: number;
  readonly previousEventId?: number;
  readonly executionStartedEventDetails?: { readonly input?: string; readonly roleArn?: string };
  readonly executionSucceededEventDetails?: { readonly output?: string };
  readonly executionFailedEventDetails?: { readonly error?: string; readonly cause?: string };
  readonly executionAbortedEventDetails?: { readonly error?: string; readonly cause?: string };
  readonly executionTimedOutEventDetails?: { readonly error?: string; readonly cause?: string };
  readonly stateEnteredEventDetails?: { readonly name: string; readonly input?: string };
  readonly stateExitedEventDetails?: { readonly name: string; readonly output?: string };
  readonly taskSucceededEventDetails?: {
    readonly resourceType: string;
    readonly resource: string;
    readonly output?: string;
  };
  readonly taskFailedEventDetails?: {
    readonly resourceType: string;
    readonly resource: string;
    readonly error?: string;
    readonly cause?: string;
  };
  readonly lambdaFunctionSucceededEventDetails?: { readonly output?: string };
  readonly lambdaFunctionFailedEventDetails?: { readonly error?: string; readonly cause?: string };
}

export type FakeExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";

export interface FakeExecution {
  readonly arn: string;
  readonly name: string;
  readonly stateMachineArn: string;
  readonly status: FakeExecutionStatus;
  readonly startDate: Date;
  readonly stopDate?: Date;
  readonly input?: string;
  readonly output?: string;
  readonly error?: string;
  readonly cause?: string;
  readonly history: readonly FakeHistoryEvent[];
}

export interface FakeCall {
  readonly service: FakeService;
  readonly operation: string;
  /** The input as it arrived: the parsed JSON body (timestamps as epoch seconds), or for Lambda the SDK's input names. */
  readonly input: unknown;
}

export interface FakeAwsError {
  readonly status: number;
  readonly type: string;
  readonly message: string;
}

export interface FakeAwsControlOptions {
  /** Most items one page of any list holds (a request asking for fewer gets fewer). Default 100. */
  readonly pageSize?: number;
  /** The clock for creation, start, stop and modification times. Default: the real clock. */
  readonly now?: () => Date;
}

export interface FakeAwsControl {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** AWS_ENDPOINT_URL_<SERVICE> for each faked service, as the SDK reads them (serviceId upper-cased, spaces to `_`). */
  readonly env: Readonly<Record<string, string>>;
  /** Every call received (including ones answered with an injected failure), in order. */
  readonly calls: readonly FakeCall[];
  setParameter(name: string, value: string): void;
  addFunction(fn: { arn: string; tags: Record<string, string> }): void;
  addEventSourceMapping(m: {
    uuid: string;
    functionArn: string;
    eventSourceArn: string;
    state: string;
    batchSize?: number;
  }): void;
  /**
   * Datapoints GetMetricData returns for a query whose MetricStat matches namespace, metric name, the exact dimension
   * set and the stat; points outside [StartTime, EndTime) are left out (CloudWatch's EndTime is exclusive). Unknown
   * metrics answer with no points (status Complete), as CloudWatch does.
   */
  setMetric(
    metric: { namespace: string; name: string; dimensions: Record<string, string>; stat: string },
    points: readonly FakeMetricPoint[],
  ): void;
  addStateMachine(sm: { name: string; arn: string }): void;
  /**
   * StartExecution creates a RUNNING execution with an ExecutionStarted history event; tests then change it with this.
   * A change to a closed status without a stopDate gets one from the clock (a closed execution always has one).
   */
  updateExecution(arn: string, change: Partial<FakeExecution>): void;
  executions(): readonly FakeExecution[];
  /** Makes an operation fail (HTTP status and error type) until called again with undefined. */
  fail(service: FakeService, operation: string, error: FakeAwsError | undefined): void;
  close(): Promise<void>;
}

/** What the SDK reads: AWS_ENDPOINT_URL_ + serviceId split on spaces, upper-cased, joined by `_` (@smithy/core endpoints). */
const endpointEnvNames: Record<FakeService, string> = {
  cloudwatch: "AWS_ENDPOINT_URL_CLOUDWATCH", // serviceId "CloudWatch"
  lambda: "AWS_ENDPOINT_URL_LAMBDA", // "Lambda"
  sfn: "AWS_ENDPOINT_URL_SFN", // "SFN"
  ssm: "AWS_ENDPOINT_URL_SSM", // "SSM"
  tagging: "AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API", // "Resource Groups Tagging API"
};

/** The JSON RPC services, by the X-Amz-Target prefix their clients send (each client's `serviceTarget`). */
const jsonTargets: Record<string, { service: FakeService; contentType: string }> = {
  GraniteServiceVersion20100801: { service: "cloudwatch", contentType: "application/x-amz-json-1.0" },
  AWSStepFunctions: { service: "sfn", contentType: "application/x-amz-json-1.0" },
  AmazonSSM: { service: "ssm", contentType: "application/x-amz-json-1.1" },
  ResourceGroupsTaggingAPI_20170126: { service: "tagging", contentType: "application/x-amz-json-1.1" },
};

const account = "123456789012";

class AwsError extends Error {
  readonly status: number;
  readonly type: string;
  constructor(status: number, type: string, message: string) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

const badRequest = (type: string, message: string) => new AwsError(400, type, message);

type Input = Record<string, unknown>;
type Handler = (input: Input, region: string) => unknown;

/** A recognised request: which operation, its input, and how to answer it. */
interface Routed {
  readonly service: FakeService;
  readonly operation: string;
  readonly input: Input;
  readonly contentType: string;
  readonly okStatus: number;
}

// --- reading inputs -------------------------------------------------------------------------------------------------

function text(input: Input, key: string): string | undefined {
  const value = input[key];
  return typeof value === "string" ? value : undefined;
}

function requiredText(input: Input, key: string): string {
  const value = text(input, key);
  if (value === undefined || value === "") throw badRequest("ValidationException", `${key} is required`);
  return value;
}

function count(input: Input, key: string): number | undefined {
  const value = input[key];
  return typeof value === "number" && value > 0 ? value : undefined;
}

/** JSON protocols send timestamps as epoch seconds (maybe fractional). */
function timestamp(input: Input, key: string): Date {
  const value = input[key];
  if (typeof value !== "number") throw badRequest("MissingRequiredParameterException", `${key} is required`);
  return new Date(value * 1000);
}

/** Dates become epoch seconds, as the SDK's JSON codecs expect; undefined fields are dropped. */
function wire(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(wire);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, wire(v)]),
    );
  }
  return value;
}

/** The region the client signed for (SigV4 credential scope `<key>/<date>/<region>/<service>/aws4_request`). */
function signedRegion(req: IncomingMessage): string {
  return /Credential=[^/]+\/\d+\/([^/]+)\//.exec(req.headers.authorization ?? "")?.[1] ?? "us-east-1";
}

// --- pagination -----------------------------------------------------------------------------------------------------

/** Opaque page tokens: the offset of the next item, so tests cannot lean on their shape. */
function paginate<T>(
  items: readonly T[],
  token: string | undefined,
  requested: number | undefined,
  pageSize: number,
  invalidTokenType: string,
): { page: T[]; next: string | undefined } {
  let start = 0;
  if (token) {
    const decoded = Buffer.from(token, "base64url").toString();
    start = /^offset:\d+$/.test(decoded) ? Number(decoded.slice("offset:".length)) : -1;
    if (start < 0 || start > items.length) throw badRequest(invalidTokenType, `invalid pagination token ${token}`);
  }
  const end = start + Math.min(requested ?? pageSize, pageSize);
  const next = end < items.length ? Buffer.from(`offset:${end}`).toString("base64url") : undefined;
  return { page: items.slice(start, end), next };
}

// --- the fake -------------------------------------------------------------------------------------------------------

interface Mapping {
  uuid: string;
  functionArn: string;
  eventSourceArn: string;
  state: string;
  batchSize: number | undefined;
  lastModified: Date;
}

export async function startFakeAwsControl(options: FakeAwsControlOptions = {}): Promise<FakeAwsControl> {
  const pageSize = options.pageSize ?? 100;
  const now = options.now ?? (() => new Date());

  const calls: FakeCall[] = [];
  const failures = new Map<string, FakeAwsError>();
  const parameters = new Map<string, { value: string; version: number; lastModified: Date }>();
  const functions = new Map<string, Record<string, string>>();
  const mappings = new Map<string, Mapping>();
  const metrics = new Map<string, readonly FakeMetricPoint[]>();
  const machines = new Map<string, { name: string; arn: string; creationDate: Date }>();
  const executions = new Map<string, FakeExecution>();

  /** One key per metric series: namespace, name, the dimension set (order does not matter) and the stat. */
  const metricKey = (namespace: string, name: string, dimensions: Iterable<[string, string]>, stat: string) =>
    JSON.stringify([namespace, name, [...dimensions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), stat]);

  // --- CloudWatch ---

  function getMetricData(input: Input): unknown {
    const start = timestamp(input, "StartTime");
    const end = timestamp(input, "EndTime");
    const ascending = text(input, "ScanBy") === "TimestampAscending";
    const queries = Array.isArray(input.MetricDataQueries) ? (input.MetricDataQueries as Input[]) : [];
    if (queries.length === 0) throw badRequest("MissingRequiredParameterException", "MetricDataQueries is required");
    const results = [];
    for (const query of queries) {
      const id = text(query, "Id");
      // Metric math and Metrics Insights are not modelled: say so rather than answer something plausible.
      if (query.Expression !== undefined) {
        throw badRequest(
          "UnknownOperationException",
          `fake: GetMetricData Expression queries are not supported (${id})`,
        );
      }
      const stat = query.MetricStat as Input | undefined;
      const metric = stat?.Metric as Input | undefined;
      if (stat === undefined || metric === undefined) {
        throw badRequest("MissingRequiredParameterException", `query ${id} has neither MetricStat nor Expression`);
      }
      if (query.ReturnData === false) continue;
      const dimensions = ((metric.Dimensions as Input[] | undefined) ?? []).map(
        (d) => [String(d.Name), String(d.Value)] as [string, string],
      );
      const key = metricKey(String(metric.Namespace), String(metric.MetricName), dimensions, String(stat.Stat));
      const points = (metrics.get(key) ?? [])
        .filter((p) => p.t >= start && p.t < end)
        .sort((a, b) => (ascending ? a.t.getTime() - b.t.getTime() : b.t.getTime() - a.t.getTime()));
      results.push({
        Id: id,
        // CloudWatch labels a series by its metric name when the query gives no label.
        Label: text(query, "Label") ?? String(metric.MetricName),
        Timestamps: points.map((p) => p.t),
        Values: points.map((p) => p.value),
        StatusCode: "Complete",
      });
    }
    return { MetricDataResults: results, Messages: [] };
  }

  // --- Step Functions ---

  function machine(arn: string) {
    const found = machines.get(arn);
    if (found === undefined) throw badRequest("StateMachineDoesNotExist", `State Machine Does Not Exist: '${arn}'`);
    return found;
  }

  function execution(arn: string): FakeExecution {
    const found = executions.get(arn);
    if (found === undefined) throw badRequest("ExecutionDoesNotExist", `Execution Does Not Exist: '${arn}'`);
    return found;
  }

  function listStateMachines(input: Input): unknown {
    const { page, next } = paginate(
      [...machines.values()],
      text(input, "nextToken"),
      count(input, "maxResults"),
      pageSize,
      "InvalidToken",
    );
    return {
      stateMachines: page.map((m) => ({
        stateMachineArn: m.arn,
        name: m.name,
        type: "STANDARD",
        creationDate: m.creationDate,
      })),
      nextToken: next,
    };
  }

  function startExecution(input: Input): unknown {
    const stateMachineArn = requiredText(input, "stateMachineArn");
    const sm = machine(stateMachineArn);
    const name = text(input, "name") ?? randomUUID();
    if (name.length > 80) throw badRequest("InvalidName", `Invalid Name: '${name}'`);
    const executionInput = text(input, "input") ?? "{}";
    // arn:aws:states:<region>:<account>:stateMachine:<machine> -> arn:aws:states:<region>:<account>:execution:<machine>:<name>
    const parts = sm.arn.split(":");
    const arn = [...parts.slice(0, 5), "execution", parts[6] ?? sm.name, name].join(":");
    const existing = executions.get(arn);
    if (existing !== undefined) {
      // Standard workflows: the same name and input while still running is an idempotent retry; anything else is refused.
      if (existing.status === "RUNNING" && existing.input === executionInput) {
        return { executionArn: existing.arn, startDate: existing.startDate };
      }
      throw badRequest("ExecutionAlreadyExists", `Execution Already Exists: '${arn}'`);
    }
    const startDate = now();
    executions.set(arn, {
      arn,
      name,
      stateMachineArn,
      status: "RUNNING",
      startDate,
      input: executionInput,
      history: [
        {
          timestamp: startDate,
          type: "ExecutionStarted",
          id: 1,
          previousEventId: 0,
          executionStartedEventDetails: { input: executionInput },
        },
      ],
    });
    return { executionArn: arn, startDate };
  }

  function listExecutions(input: Input): unknown {
    const stateMachineArn = requiredText(input, "stateMachineArn");
    machine(stateMachineArn);
    const statusFilter = text(input, "statusFilter");
    const matching = [...executions.values()]
      .map((e, order) => ({ e, order }))
      .filter(({ e }) => e.stateMachineArn === stateMachineArn && (!statusFilter || e.status === statusFilter))
      // Newest first; executions started in the same instant keep newest-created first.
      .sort((a, b) => b.e.startDate.getTime() - a.e.startDate.getTime() || b.order - a.order)
      .map(({ e }) => e);
    const { page, next } = paginate(
      matching,
      text(input, "nextToken"),
      count(input, "maxResults"),
      pageSize,
      "InvalidToken",
    );
    return {
      executions: page.map((e) => ({
        executionArn: e.arn,
        stateMachineArn: e.stateMachineArn,
        name: e.name,
        status: e.status,
        startDate: e.startDate,
        stopDate: e.stopDate,
      })),
      nextToken: next,
    };
  }

  function describeExecution(input: Input): unknown {
    const e = execution(requiredText(input, "executionArn"));
    return {
      executionArn: e.arn,
      stateMachineArn: e.stateMachineArn,
      name: e.name,
      status: e.status,
      startDate: e.startDate,
      stopDate: e.stopDate,
      input: e.input,
      output: e.output,
      error: e.error,
      cause: e.cause,
    };
  }

  function getExecutionHistory(input: Input): unknown {
    const e = execution(requiredText(input, "executionArn"));
    const events = [...e.history].sort((a, b) => a.id - b.id);
    if (input.reverseOrder === true) events.reverse();
    const { page, next } = paginate(
      events,
      text(input, "nextToken"),
      count(input, "maxResults"),
      pageSize,
      "InvalidToken",
    );
    return { events: page, nextToken: next };
  }

  // --- SSM ---

  function getParameter(input: Input, region: string): unknown {
    const name = requiredText(input, "Name");
    const found = parameters.get(name);
    if (found === undefined) throw badRequest("ParameterNotFound", `Parameter ${name} not found.`);
    return {
      Parameter: {
        Name: name,
        Type: "String",
        Value: found.value,
        Version: found.version,
        LastModifiedDate: found.lastModified,
        ARN: `arn:aws:ssm:${region}:${account}:parameter${name.startsWith("/") ? "" : "/"}${name}`,
        DataType: "text",
      },
    };
  }

  // --- tagging ---

  /** `lambda:function` for arn:aws:lambda:<region>:<account>:function:<name>; `lambda` alone matches the service. */
  function resourceTypeMatches(arn: string, filter: string): boolean {
    const [, , service, , , resource = ""] = arn.split(":");
    const type = `${service}:${resource.split("/")[0]}`;
    return filter === service || filter === type;
  }

  function getResources(input: Input): unknown {
    const arnList = input.ResourceARNList as string[] | undefined;
    const typeFilters = (input.ResourceTypeFilters as string[] | undefined) ?? [];
    const tagFilters = (input.TagFilters as { Key?: string; Values?: string[] }[] | undefined) ?? [];
    const matching = [...functions.entries()].filter(
      ([arn, tags]) =>
        (arnList === undefined || arnList.includes(arn)) &&
        (typeFilters.length === 0 || typeFilters.some((f) => resourceTypeMatches(arn, f))) &&
        // Every filter must hold: the key is present and, if values are given, its value is one of them.
        tagFilters.every(
          (f) =>
            f.Key !== undefined &&
            tags[f.Key] !== undefined &&
            (!f.Values?.length || f.Values.includes(tags[f.Key] as string)),
        ),
    );
    const { page, next } = paginate(
      matching,
      text(input, "PaginationToken"),
      count(input, "ResourcesPerPage"),
      pageSize,
      "InvalidParameterException",
    );
    return {
      // The tagging API answers an empty string, not nothing, on the last page.
      PaginationToken: next ?? "",
      ResourceTagMappingList: page.map(([arn, tags]) => ({
        ResourceARN: arn,
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      })),
    };
  }

  // --- Lambda ---

  const mappingOut = (m: Mapping) => ({
    UUID: m.uuid,
    FunctionArn: m.functionArn,
    EventSourceArn: m.eventSourceArn,
    State: m.state,
    BatchSize: m.batchSize,
    LastModified: m.lastModified,
  });

  /** Lambda takes a function name or its ARN. */
  const isFunction = (arn: string, wanted: string) => wanted === arn || wanted === arn.split(":")[6];

  function listEventSourceMappings(input: Input): unknown {
    const functionName = text(input, "FunctionName");
    const eventSourceArn = text(input, "EventSourceArn");
    const matching = [...mappings.values()].filter(
      (m) =>
        (functionName === undefined || isFunction(m.functionArn, functionName)) &&
        (eventSourceArn === undefined || m.eventSourceArn === eventSourceArn),
    );
    const { page, next } = paginate(
      matching,
      text(input, "Marker"),
      count(input, "MaxItems"),
      pageSize,
      "InvalidParameterValueException",
    );
    return { EventSourceMappings: page.map(mappingOut), NextMarker: next };
  }

  function updateEventSourceMapping(input: Input): unknown {
    const uuid = requiredText(input, "UUID");
    const m = mappings.get(uuid);
    if (m === undefined) {
      throw new AwsError(404, "ResourceNotFoundException", `The resource you requested does not exist. (UUID ${uuid})`);
    }
    if (typeof input.Enabled === "boolean") m.state = input.Enabled ? "Enabled" : "Disabled";
    const batchSize = count(input, "BatchSize");
    if (batchSize !== undefined) m.batchSize = batchSize;
    m.lastModified = now();
    return mappingOut(m);
  }

  // --- routing ---

  const operations: Record<FakeService, Record<string, Handler>> = {
    cloudwatch: { GetMetricData: getMetricData },
    sfn: {
      ListStateMachines: listStateMachines,
      StartExecution: startExecution,
      ListExecutions: listExecutions,
      DescribeExecution: describeExecution,
      GetExecutionHistory: getExecutionHistory,
    },
    ssm: { GetParameter: getParameter },
    tagging: { GetResources: getResources },
    lambda: { ListEventSourceMappings: listEventSourceMappings, UpdateEventSourceMapping: updateEventSourceMapping },
  };

  /** Lambda's REST routes (the `http` traits in @aws-sdk/client-lambda), mapped back to the SDK's input names. */
  const lambdaRoutes: {
    method: string;
    path: RegExp;
    operation: string;
    okStatus: number;
    input: (match: RegExpExecArray, query: URLSearchParams, body: Input) => Input;
  }[] = [
    {
      method: "GET",
      path: /^\/2015-03-31\/event-source-mappings\/?$/,
      operation: "ListEventSourceMappings",
      okStatus: 200,
      input: (_, query) => {
        const input: Input = {};
        for (const key of ["FunctionName", "EventSourceArn", "Marker"]) {
          const value = query.get(key);
          if (value !== null) input[key] = value;
        }
        const maxItems = query.get("MaxItems");
        if (maxItems !== null) input.MaxItems = Number(maxItems);
        return input;
      },
    },
    {
      method: "PUT",
      path: /^\/2015-03-31\/event-source-mappings\/([^/]+)$/,
      operation: "UpdateEventSourceMapping",
      okStatus: 202,
      input: (match, _, body) => ({ ...body, UUID: decodeURIComponent(match[1] ?? "") }),
    },
  ];

  function parseJson(body: string): Input {
    if (body.trim() === "") return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (error) {
      throw badRequest("SerializationException", `malformed JSON body: ${(error as Error).message}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw badRequest("SerializationException", "the JSON body must be an object");
    }
    return parsed as Input;
  }

  function route(req: IncomingMessage, body: string): Routed {
    const target = req.headers["x-amz-target"];
    if (typeof target === "string") {
      const dot = target.lastIndexOf(".");
      const known = jsonTargets[target.slice(0, dot)];
      if (known === undefined || req.method !== "POST") {
        throw badRequest("UnknownOperationException", `fake: unknown target ${req.method} ${target}`);
      }
      const contentType = req.headers["content-type"] ?? "";
      if (!contentType.startsWith(known.contentType)) {
        throw badRequest("SerializationException", `${target} wants ${known.contentType}, got '${contentType}'`);
      }
      return { ...known, operation: target.slice(dot + 1), input: parseJson(body), okStatus: 200 };
    }
    const url = new URL(req.url ?? "/", "http://fake");
    for (const r of lambdaRoutes) {
      const match = r.path.exec(url.pathname);
      if (match && req.method === r.method) {
        const input = r.input(match, url.searchParams, parseJson(body));
        return {
          service: "lambda",
          operation: r.operation,
          input,
          contentType: "application/json",
          okStatus: r.okStatus,
        };
      }
    }
    throw badRequest("UnknownOperationException", `fake: no operation for ${req.method} ${url.pathname}${url.search}`);
  }

  let requestCount = 0;

  function answer(res: ServerResponse, status: number, contentType: string, payload: unknown, errorType?: string) {
    const body = JSON.stringify(payload);
    res.writeHead(status, {
      "content-type": contentType,
      "content-length": Buffer.byteLength(body),
      "x-amzn-requestid": `fake-${++requestCount}`,
      ...(errorType === undefined ? {} : { "x-amzn-errortype": errorType }),
    });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    let contentType = "application/json";
    try {
      const routed = route(req, body);
      contentType = routed.contentType;
      calls.push({ service: routed.service, operation: routed.operation, input: routed.input });
      const injected = failures.get(`${routed.service}.${routed.operation}`);
      if (injected !== undefined) throw new AwsError(injected.status, injected.type, injected.message);
      const handler = operations[routed.service][routed.operation];
      if (handler === undefined) {
        throw badRequest("UnknownOperationException", `fake: ${routed.service} has no operation ${routed.operation}`);
      }
      answer(res, routed.okStatus, contentType, wire(handler(routed.input, signedRegion(req))));
    } catch (error) {
      const e = error instanceof AwsError ? error : new AwsError(500, "InternalFailure", String(error));
      answer(res, e.status, contentType, { __type: e.type, message: e.message }, e.type);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => res.destroy(error as Error));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    env: Object.fromEntries(Object.values(endpointEnvNames).map((name) => [name, url])),
    calls,
    setParameter(name, value) {
      const version = (parameters.get(name)?.version ?? 0) + 1;
      parameters.set(name, { value, version, lastModified: now() });
    },
    addFunction(fn) {
      functions.set(fn.arn, { ...fn.tags });
    },
    addEventSourceMapping(m) {
      mappings.set(m.uuid, {
        uuid: m.uuid,
        functionArn: m.functionArn,
        eventSourceArn: m.eventSourceArn,
        state: m.state,
        batchSize: m.batchSize,
        lastModified: now(),
      });
    },
    setMetric(metric, points) {
      const key = metricKey(metric.namespace, metric.name, Object.entries(metric.dimensions), metric.stat);
      metrics.set(key, [...points]);
    },
    addStateMachine(sm) {
      machines.set(sm.arn, { name: sm.name, arn: sm.arn, creationDate: now() });
    },
    updateExecution(arn, change) {
      const current = executions.get(arn);
      if (current === undefined) throw new Error(`fake: no execution ${arn}`);
      const next: FakeExecution = { ...current, ...change, arn };
      const closedWithoutStop = next.status !== "RUNNING" && next.stopDate === undefined;
      executions.set(arn, closedWithoutStop ? { ...next, stopDate: now() } : next);
    },
    executions() {
      return [...executions.values()];
    },
    fail(service, operation, error) {
      if (error === undefined) failures.delete(`${service}.${operation}`);
      else failures.set(`${service}.${operation}`, error);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
