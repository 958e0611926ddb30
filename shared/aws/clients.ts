/**
 * AWS SDK v3 clients, created once per module (Lambda reuses them across invocations).
 * Endpoints come from the SDK's standard settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>),
 * so the same code talks to AWS, LocalStack or the embedded local cloud.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { KinesisClient } from "@aws-sdk/client-kinesis";
import { S3Client } from "@aws-sdk/client-s3";
import { SNSClient } from "@aws-sdk/client-sns";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { NodeHttpHandler } from "@smithy/node-http-handler";

const common = () => ({
  region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
  maxAttempts: 5,
});

let kinesis: KinesisClient | undefined;
let dynamo: DynamoDBDocumentClient | undefined;
let sns: SNSClient | undefined;
let sqs: SQSClient | undefined;
let s3: S3Client | undefined;

/** Kinesis over HTTP/1.1: the SDK's HTTP/2 default is only needed for SubscribeToShard. */
export function kinesisClient(): KinesisClient {
  kinesis ??= new KinesisClient({ ...common(), requestHandler: new NodeHttpHandler({ connectionTimeout: 5000 }) });
  return kinesis;
}

/** DynamoDB document client: plain JS values in and out, undefined attributes dropped. */
export function dynamoClient(): DynamoDBDocumentClient {
  dynamo ??= DynamoDBDocumentClient.from(new DynamoDBClient(common()), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return dynamo;
}

export function snsClient(): SNSClient {
  sns ??= new SNSClient(common());
  return sns;
}

/** With an endpoint override, requests go to that endpoint whatever host a local queue URL names. */
export function sqsClient(): SQSClient {
  const overridden = Boolean(process.env.AWS_ENDPOINT_URL_SQS ?? process.env.AWS_ENDPOINT_URL);
  sqs ??= new SQSClient({ ...common(), useQueueUrlAsEndpoint: !overridden });
  return sqs;
}

/** S3 with path-style addressing when an endpoint is overridden (local emulators have no DNS per bucket). */
export function s3Client(): S3Client {
  const overridden = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  s3 ??= new S3Client({ ...common(), forcePathStyle: overridden });
  return s3;
}
