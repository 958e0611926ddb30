/**
 * AWS SDK v3 clients, created once per module (Lambda reuses them across invocations).
 * Endpoints come from the SDK's standard settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>),
 * so the same code talks to AWS, LocalStack or the embedded local cloud. A client is made
 * anew only if those settings change (a restarted local cloud listens on new ports).
 *
 * Each SDK package is loaded when its client is first asked for, not when this module is: a
 * Lambda function loads only the clients it uses (each costs 150–250 ms of cold start to load),
 * not all eleven. `require` loads the same module instance a static `import` of the package
 * elsewhere does (the SDK's packages have no `exports` map: Node loads their CommonJS build
 * either way), and in a Lambda bundle it stays a runtime load of the runtime's SDK.
 */
import { createRequire as requireFrom } from "node:module";
import { announcingWrites } from "../runner/stream-signal.ts";
import { countCalls } from "./call-counter.ts";
import { injectSdkFaults } from "./sdk-faults.ts";

const region = () => process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
const endpointOverride = (service: string) =>
  process.env[`AWS_ENDPOINT_URL_${service}`] ?? process.env.AWS_ENDPOINT_URL;

const destroyers: (() => void)[] = [];

/** Closes every client's connections (an emulator's server finishes closing only once its clients' keep-alive connections are gone). */
export function destroyClients(): void {
  for (const destroy of destroyers) destroy();
}

/**
 * Caches one client per service, keyed on the settings it was built with. Declared pure: a
 * bundle that never asks for a client drops it (and its destroyer, which only a made client needs).
 */
function cached<T extends { destroy(): void }>(service: string, build: (overridden: boolean) => T): () => T {
  let client: T | undefined;
  let builtFor: string | undefined;
  destroyers.push(() => {
    client?.destroy();
    client = undefined;
  });
  return () => {
    const key = `${region()}|${endpointOverride(service) ?? ""}`;
    if (client === undefined || builtFor !== key) {
      client?.destroy();
      const made = build(endpointOverride(service) !== undefined);
      // The local cloud's tools: folded away in a Lambda bundle (infra/bundling.ts).
      client = process.env.CANON_BUNDLE === "lambda" ? made : countCalls(injectSdkFaults(made, service));
      builtFor = key;
    }
    return client;
  };
}

const load = requireFrom(import.meta.url);

/**
 * The HTTP/1.1 handler of the SDK the Kinesis client comes from: resolved from that package, as
 * it resolves its own, so a Lambda function uses the runtime's copy rather than bundling one.
 */
const kinesisHttp1Handler = (): import("@smithy/node-http-handler").NodeHttpHandler => {
  const fromKinesis = requireFrom(load.resolve("@aws-sdk/client-kinesis"));
  const { NodeHttpHandler } = fromKinesis("@smithy/node-http-handler") as typeof import("@smithy/node-http-handler");
  return new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 30_000 });
};

/**
 * A request whose socket goes quiet for 30 s is abandoned and retried (longer than any long poll,
 * 20 s): without it a request the server never answers holds its caller for ever.
 */
const common = () => ({
  region: region(),
  maxAttempts: 5,
  requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
});

/** Kinesis over HTTP/1.1: the SDK's HTTP/2 default is only needed for SubscribeToShard. */
export const kinesisClient = /* @__PURE__ */ cached("KINESIS", () => {
  const { KinesisClient } = load("@aws-sdk/client-kinesis") as typeof import("@aws-sdk/client-kinesis");
  const client = new KinesisClient({ ...common(), requestHandler: kinesisHttp1Handler() });
  // Wakes the stream's readers in this process (the local runner): not in a Lambda bundle.
  return process.env.CANON_BUNDLE === "lambda" ? client : announcingWrites(client);
});

/** DynamoDB document client: plain JS values in and out, undefined attributes dropped. */
export const dynamoClient = /* @__PURE__ */ cached("DYNAMODB", () => {
  const { DynamoDBClient } = load("@aws-sdk/client-dynamodb") as typeof import("@aws-sdk/client-dynamodb");
  const { DynamoDBDocumentClient } = load("@aws-sdk/lib-dynamodb") as typeof import("@aws-sdk/lib-dynamodb");
  return DynamoDBDocumentClient.from(new DynamoDBClient(common()), {
    marshallOptions: { removeUndefinedValues: true },
  });
});

export const snsClient = /* @__PURE__ */ cached("SNS", () => {
  const { SNSClient } = load("@aws-sdk/client-sns") as typeof import("@aws-sdk/client-sns");
  return new SNSClient(common());
});

/** With an endpoint override, requests go to that endpoint whatever host a local queue URL names. */
export const sqsClient = /* @__PURE__ */ cached("SQS", (overridden) => {
  const { SQSClient } = load("@aws-sdk/client-sqs") as typeof import("@aws-sdk/client-sqs");
  return new SQSClient({ ...common(), useQueueUrlAsEndpoint: !overridden });
});

/** S3 with path-style addressing when an endpoint is overridden (local emulators have no DNS per bucket). */
export const s3Client = /* @__PURE__ */ cached("S3", (overridden) => {
  const { S3Client } = load("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");
  return new S3Client({ ...common(), forcePathStyle: overridden });
});

// The control plane a deployed system is read through (the console's AWS source, shared/console/aws-source.ts).
export const cloudWatchClient = /* @__PURE__ */ cached("CLOUDWATCH", () => {
  const { CloudWatchClient } = load("@aws-sdk/client-cloudwatch") as typeof import("@aws-sdk/client-cloudwatch");
  return new CloudWatchClient(common());
});
export const lambdaClient = /* @__PURE__ */ cached("LAMBDA", () => {
  const { LambdaClient } = load("@aws-sdk/client-lambda") as typeof import("@aws-sdk/client-lambda");
  return new LambdaClient(common());
});
export const sfnClient = /* @__PURE__ */ cached("SFN", () => {
  const { SFNClient } = load("@aws-sdk/client-sfn") as typeof import("@aws-sdk/client-sfn");
  return new SFNClient(common());
});
export const ssmClient = /* @__PURE__ */ cached("SSM", () => {
  const { SSMClient } = load("@aws-sdk/client-ssm") as typeof import("@aws-sdk/client-ssm");
  return new SSMClient(common());
});
export const taggingClient = /* @__PURE__ */ cached("RESOURCE_GROUPS_TAGGING_API", () => {
  const { ResourceGroupsTaggingAPIClient } = load(
    "@aws-sdk/client-resource-groups-tagging-api",
  ) as typeof import("@aws-sdk/client-resource-groups-tagging-api");
  return new ResourceGroupsTaggingAPIClient(common());
});
