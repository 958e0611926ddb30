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
import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { KinesisClient } from "@aws-sdk/client-kinesis";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { ResourceGroupsTaggingAPIClient } from "@aws-sdk/client-resource-groups-tagging-api";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SFNClient } from "@aws-sdk/client-sfn";
import type { SNSClient } from "@aws-sdk/client-sns";
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
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

/** Caches one client per service, keyed on the settings it was built with. */
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
      client = countCalls(injectSdkFaults(build(endpointOverride(service) !== undefined), service));
      builtFor = key;
    }
    return client;
  };
}

const load = requireFrom(import.meta.url);
const sdk = {
  cloudWatch: () => load("@aws-sdk/client-cloudwatch") as typeof import("@aws-sdk/client-cloudwatch"),
  dynamo: () => load("@aws-sdk/client-dynamodb") as typeof import("@aws-sdk/client-dynamodb"),
  dynamoDocument: () => load("@aws-sdk/lib-dynamodb") as typeof import("@aws-sdk/lib-dynamodb"),
  kinesis: () => load("@aws-sdk/client-kinesis") as typeof import("@aws-sdk/client-kinesis"),
  lambda: () => load("@aws-sdk/client-lambda") as typeof import("@aws-sdk/client-lambda"),
  s3: () => load("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3"),
  sfn: () => load("@aws-sdk/client-sfn") as typeof import("@aws-sdk/client-sfn"),
  sns: () => load("@aws-sdk/client-sns") as typeof import("@aws-sdk/client-sns"),
  sqs: () => load("@aws-sdk/client-sqs") as typeof import("@aws-sdk/client-sqs"),
  ssm: () => load("@aws-sdk/client-ssm") as typeof import("@aws-sdk/client-ssm"),
  tagging: () =>
    load("@aws-sdk/client-resource-groups-tagging-api") as typeof import("@aws-sdk/client-resource-groups-tagging-api"),
};

/**
 * The HTTP/1.1 handler of the SDK the Kinesis client comes from: resolved from that package, as
 * it resolves its own, so a Lambda function uses the runtime's copy rather than bundling one.
 */
const kinesisHttp1Handler = (): import("@smithy/node-http-handler").NodeHttpHandler => {
  const fromKinesis = requireFrom(load.resolve("@aws-sdk/client-kinesis"));
  const { NodeHttpHandler } = fromKinesis("@smithy/node-http-handler") as typeof import("@smithy/node-http-handler");
  return new NodeHttpHandler({ connectionTimeout: 5000 });
};

const common = () => ({ region: region(), maxAttempts: 5 });

/** Kinesis over HTTP/1.1: the SDK's HTTP/2 default is only needed for SubscribeToShard. */
export const kinesisClient = cached(
  "KINESIS",
  (): KinesisClient =>
    announcingWrites(
      new (sdk.kinesis().KinesisClient)({
        ...common(),
        requestHandler: kinesisHttp1Handler(),
      }),
    ),
);

/** DynamoDB document client: plain JS values in and out, undefined attributes dropped. */
export const dynamoClient = cached(
  "DYNAMODB",
  (): DynamoDBDocumentClient =>
    sdk.dynamoDocument().DynamoDBDocumentClient.from(new (sdk.dynamo().DynamoDBClient)(common()), {
      marshallOptions: { removeUndefinedValues: true },
    }),
);

export const snsClient = cached("SNS", (): SNSClient => new (sdk.sns().SNSClient)(common()));

/** With an endpoint override, requests go to that endpoint whatever host a local queue URL names. */
export const sqsClient = cached(
  "SQS",
  (overridden): SQSClient => new (sdk.sqs().SQSClient)({ ...common(), useQueueUrlAsEndpoint: !overridden }),
);

/** S3 with path-style addressing when an endpoint is overridden (local emulators have no DNS per bucket). */
export const s3Client = cached(
  "S3",
  (overridden): S3Client => new (sdk.s3().S3Client)({ ...common(), forcePathStyle: overridden }),
);

// The control plane a deployed system is read through (the console's AWS source, shared/console/aws-source.ts).
export const cloudWatchClient = cached(
  "CLOUDWATCH",
  (): CloudWatchClient => new (sdk.cloudWatch().CloudWatchClient)(common()),
);
export const lambdaClient = cached("LAMBDA", (): LambdaClient => new (sdk.lambda().LambdaClient)(common()));
export const sfnClient = cached("SFN", (): SFNClient => new (sdk.sfn().SFNClient)(common()));
export const ssmClient = cached("SSM", (): SSMClient => new (sdk.ssm().SSMClient)(common()));
export const taggingClient = cached(
  "RESOURCE_GROUPS_TAGGING_API",
  (): ResourceGroupsTaggingAPIClient => new (sdk.tagging().ResourceGroupsTaggingAPIClient)(common()),
);
