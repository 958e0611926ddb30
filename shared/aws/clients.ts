/**
 * AWS SDK v3 clients, created once per module (Lambda reuses them across invocations).
 * Endpoints come from the SDK's standard settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>),
 * so the same code talks to AWS, LocalStack or the embedded local cloud. A client is made
 * anew only if those settings change (a restarted local cloud listens on new ports).
 */
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { KinesisClient } from "@aws-sdk/client-kinesis";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { ResourceGroupsTaggingAPIClient } from "@aws-sdk/client-resource-groups-tagging-api";
import { S3Client } from "@aws-sdk/client-s3";
import { SFNClient } from "@aws-sdk/client-sfn";
import { SNSClient } from "@aws-sdk/client-sns";
import { SQSClient } from "@aws-sdk/client-sqs";
import { SSMClient } from "@aws-sdk/client-ssm";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { NodeHttpHandler } from "@smithy/node-http-handler";
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

const common = () => ({ region: region(), maxAttempts: 5 });

/** Kinesis over HTTP/1.1: the SDK's HTTP/2 default is only needed for SubscribeToShard. */
export const kinesisClient = cached("KINESIS", () =>
  announcingWrites(
    new KinesisClient({ ...common(), requestHandler: new NodeHttpHandler({ connectionTimeout: 5000 }) }),
  ),
);

/** DynamoDB document client: plain JS values in and out, undefined attributes dropped. */
export const dynamoClient = cached("DYNAMODB", () =>
  DynamoDBDocumentClient.from(new DynamoDBClient(common()), { marshallOptions: { removeUndefinedValues: true } }),
);

export const snsClient = cached("SNS", () => new SNSClient(common()));

/** With an endpoint override, requests go to that endpoint whatever host a local queue URL names. */
export const sqsClient = cached(
  "SQS",
  (overridden) => new SQSClient({ ...common(), useQueueUrlAsEndpoint: !overridden }),
);

/** S3 with path-style addressing when an endpoint is overridden (local emulators have no DNS per bucket). */
export const s3Client = cached("S3", (overridden) => new S3Client({ ...common(), forcePathStyle: overridden }));

// The control plane a deployed system is read through (the console's AWS source, shared/console/aws-source.ts).
export const cloudWatchClient = cached("CLOUDWATCH", () => new CloudWatchClient(common()));
export const lambdaClient = cached("LAMBDA", () => new LambdaClient(common()));
export const sfnClient = cached("SFN", () => new SFNClient(common()));
export const ssmClient = cached("SSM", () => new SSMClient(common()));
export const taggingClient = cached("RESOURCE_GROUPS_TAGGING_API", () => new ResourceGroupsTaggingAPIClient(common()));
