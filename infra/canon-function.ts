/**
 * One Lambda function of the plan: bundled from its handler module by local esbuild,
 * Node.js 24 on arm64, with its environment resolved from the plan's resource refs and
 * exactly the grants those refs name, and the event source mapping the plan declares.
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Annotations, Duration, RemovalPolicy, Tags } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { KinesisEventSource, SqsDlq, SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import type { Owner, PlannedFunction, ResourceRef } from "../shared/plan.ts";
import { ownerTag, pascal, sameOwner } from "./names.ts";
import type { PlanResources } from "./resources.ts";

/** The repository root: handler paths in the plan are relative to it. */
export const repoRoot = fileURLToPath(new URL("..", import.meta.url));

export interface CanonFunctionProps {
  readonly planned: PlannedFunction;
  /** Where the function's env refs and event source are looked up. */
  readonly resources: PlanResources;
  /** @default 512 */
  readonly memorySize?: number;
  /**
   * @default 60 s for the relay, 25 s otherwise; never more than the visibility
   * timeout of the queue it reads (else SQS redelivers a message still in flight).
   */
  readonly timeout?: Duration;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

export class CanonFunction extends Construct {
  readonly function: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: CanonFunctionProps) {
    super(scope, id);
    const { planned, resources } = props;

    this.function = new nodejs.NodejsFunction(this, "Function", {
      entry: join(repoRoot, planned.handler),
      handler: "handler",
      projectRoot: repoRoot,
      depsLockFilePath: join(repoRoot, "package-lock.json"),
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? defaultTimeout(planned, resources),
      tracing: lambda.Tracing.ACTIVE,
      logGroup: new logs.LogGroup(this, "Logs", {
        retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
      environment: { NODE_OPTIONS: "--enable-source-maps" },
      bundling: {
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        mainFields: ["module", "main"],
        // Some CommonJS dependencies still call require(); give the ESM bundle one.
        banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        externalModules: ["@aws-sdk/*"], // the Node.js 24 runtime ships SDK v3
        minify: true,
        sourceMap: true,
      },
    });

    for (const [name, ref] of Object.entries(planned.env)) {
      this.function.addEnvironment(name, this.resolve(ref, resources));
    }
    this.addEventSource(planned, resources);

    Tags.of(this).add("canon:function", planned.id);
    Tags.of(this).add("canon:role", planned.role);
    Tags.of(this).add("canon:owner", ownerTag(planned.owner));
  }

  /** The physical value of a ref, and the one grant it names. */
  private resolve(ref: ResourceRef, resources: PlanResources): string {
    switch (ref.kind) {
      case "table": {
        const table = resources.table(ref.id);
        if (ref.access === "read") table.grantReadData(this.function);
        else table.grantReadWriteData(this.function);
        return table.tableName;
      }
      case "queue": {
        const queue = resources.queue(ref.id);
        queue.grantSendMessages(this.function);
        return queue.queueUrl;
      }
      case "stream": {
        const stream = resources.stream(ref.bus);
        stream.grantWrite(this.function);
        return stream.streamName;
      }
      case "topic": {
        const topic = resources.topic(ref.bus);
        topic.grantPublish(this.function);
        return topic.topicArn;
      }
      case "value":
        return ref.value;
    }
  }

  private addEventSource({ source, id }: PlannedFunction, resources: PlanResources): void {
    switch (source.kind) {
      case "sqs":
        this.function.addEventSource(
          new SqsEventSource(resources.queue(source.queueId), {
            batchSize: source.batchSize,
            reportBatchItemFailures: true,
          }),
        );
        return;
      case "kinesis": {
        const failures = resources.queue(source.onFailureQueueId);
        if (failures.fifo) {
          // Lambda sends failed-batch records without a MessageGroupId, which a FIFO queue refuses.
          Annotations.of(this).addWarning(
            `${id}: on-failure destination ${source.onFailureQueueId} is a FIFO queue; AWS Lambda only delivers stream failure records to standard queues`,
          );
        }
        this.function.addEventSource(
          new KinesisEventSource(resources.stream(source.bus), {
            batchSize: source.batchSize,
            maxBatchingWindow: source.batchWindowSeconds > 0 ? Duration.seconds(source.batchWindowSeconds) : undefined,
            startingPosition: lambda.StartingPosition[source.startingPosition],
            bisectBatchOnError: source.bisectBatchOnError,
            retryAttempts: source.maxRetryAttempts, // -1: until the record expires
            reportBatchItemFailures: true,
            onFailure: new SqsDlq(failures),
          }),
        );
        return;
      }
      case "http":
        return; // the API stack puts it behind the HTTP API
    }
  }
}

/** Creates every function the owner owns, each under the construct id of its plan id. */
export function addOwnedFunctions(
  scope: Construct,
  resources: PlanResources,
  owner: Owner,
): Map<PlannedFunction, CanonFunction> {
  const created = new Map<PlannedFunction, CanonFunction>();
  for (const planned of resources.plan.functions) {
    if (sameOwner(planned.owner, owner))
      created.set(planned, new CanonFunction(scope, pascal(planned.id), { planned, resources }));
  }
  return created;
}

function defaultTimeout(planned: PlannedFunction, resources: PlanResources): Duration {
  const seconds = planned.role === "relay" ? 60 : 25;
  if (planned.source.kind !== "sqs") return Duration.seconds(seconds);
  return Duration.seconds(Math.min(seconds, resources.plannedQueue(planned.source.queueId).visibilityTimeoutSeconds));
}
