/**
 * The bench's own AWS clients: the same endpoints as shared/aws/clients.ts (the standard SDK
 * settings the local cloud sets), but never counted by shared/aws/call-counter.ts, so the
 * bench's watching (view and outcome polls, raw hops, the tap queue) stays out of the calls per
 * event it reports. Made after the local cloud has set the endpoints; `destroy()` closes them.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { KinesisClient } from "@aws-sdk/client-kinesis";
import { SNSClient } from "@aws-sdk/client-sns";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { NodeHttpHandler } from "@smithy/node-http-handler";

export interface BenchAws {
  readonly dynamo: DynamoDBDocumentClient;
  readonly kinesis: KinesisClient;
  readonly sns: SNSClient;
  readonly sqs: SQSClient;
  destroy(): void;
}

export function benchAws(): BenchAws {
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const common = { region, maxAttempts: 5 };
  const overridden = (service: string) =>
    (process.env[`AWS_ENDPOINT_URL_${service}`] ?? process.env.AWS_ENDPOINT_URL) !== undefined;
  // Many requests at once (the open loop, 4 lanes of raw hops): do not queue behind a small pool.
  const handler = () => new NodeHttpHandler({ connectionTimeout: 5000, httpAgent: { maxSockets: 256 } });
  const raw = new DynamoDBClient({ ...common, requestHandler: handler() });
  const dynamo = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  const kinesis = new KinesisClient({ ...common, requestHandler: handler() });
  const sns = new SNSClient({ ...common, requestHandler: handler() });
  const sqs = new SQSClient({ ...common, requestHandler: handler(), useQueueUrlAsEndpoint: !overridden("SQS") });
  return {
    dynamo,
    kinesis,
    sns,
    sqs,
    destroy() {
      dynamo.destroy();
      raw.destroy();
      kinesis.destroy();
      sns.destroy();
      sqs.destroy();
    },
  };
}
