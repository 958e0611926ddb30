/**
 * One Lambda function of the plan: bundled from its handler module by local esbuild,
 * Node.js 24 on arm64 with the AWS SDK left to the runtime, X-Ray tracing, its own log group
 * and its own role. The role holds exactly the grants its environment refs name (plus its log
 * group and tracing); the function carries the `canon:*` tags the laws are checked against.
 * A function that `startsDetached` (a warming-up projection) gets its queue mapping disabled:
 * its warm-up job (infra/warm-up.ts) enables it when the replay is done. A stream mapping that
 * reads by enhanced fan-out registers its stream consumer beside it (the relay's, in the bus
 * stack) and reads through it, with the same batching, retries, record age and failure queue.
 */

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Annotations, Duration, RemovalPolicy, Stack, Tags, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kinesis from "aws-cdk-lib/aws-kinesis";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import {
  KinesisConsumerEventSource,
  KinesisEventSource,
  type KinesisEventSourceProps,
  SqsEventSource,
} from "aws-cdk-lib/aws-lambda-event-sources";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { bundleEntry } from "../shared/entries/source.ts";
import type { Owner, PlannedFunction, ResourceRef } from "../shared/plan.ts";
import {
  bundleDefines,
  deployedNodeOptions,
  esmRequireBanner,
  externalModules,
  mainFields,
  nodeTarget,
} from "./bundling.ts";
import { nagResource } from "./nag.ts";
import { ownerTag, pascal, sameOwner, tagKeys } from "./names.ts";
import type { PlanResources } from "./resources.ts";

/** The repository root: handler paths in the plan are relative to it. */
export const repoRoot = fileURLToPath(new URL("..", import.meta.url));

export interface CanonFunctionProps {
  readonly planned: PlannedFunction;
  /** Where the function's env refs and event source are looked up. */
  readonly resources: PlanResources;
  /** @default 1024 for a replayer, 512 otherwise */
  readonly memorySize?: number;
  /**
   * @default 60 s for the relay and the archiver, 15 minutes for a replayer (it returns after
   * about 10), 25 s otherwise; never more than the visibility timeout of the queue it reads
   * (else SQS redelivers a message still in flight).
   */
  readonly timeout?: Duration;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/** The SQS actions that send, without the key grant `grantSendMessages` adds (wildcard KMS actions). */
const sendActions = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"];
/** What SQS asks KMS for when it encrypts a message for a sender. */
const sendKeyActions = ["kms:GenerateDataKey", "kms:Decrypt"];
/** What S3 asks KMS for when it reads (decrypts) or writes (a new data key) an SSE-KMS object. */
const objectKeyActions = { read: ["kms:Decrypt"], readWrite: ["kms:Decrypt", "kms:GenerateDataKey"] } as const;

/**
 * How every Canon Lambda function is bundled: the settings the benchmark measures bundles with
 * (infra/bundling.ts, bench/bundles.ts), by local esbuild, never Docker.
 */
export const lambdaBundling: nodejs.BundlingOptions = {
  forceDockerBundling: false,
  format: nodejs.OutputFormat.ESM,
  target: nodeTarget,
  mainFields,
  banner: esmRequireBanner,
  define: bundleDefines,
  externalModules, // the Node.js 24 runtime ships SDK v3
  minify: true,
  sourceMap: true,
};

export class CanonFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly planned: PlannedFunction;
  /** Its queue's event source mapping (SQS sources only): a warm-up job enables it. */
  readonly queueMapping?: { readonly id: string; readonly arn: string };
  /** The enhanced fan-out consumer its stream mapping reads through, if it reads by one. */
  readonly streamConsumer?: kinesis.StreamConsumer;

  constructor(scope: Construct, id: string, props: CanonFunctionProps) {
    super(scope, id);
    const { planned, resources } = props;
    this.planned = planned;

    this.logGroup = new logs.LogGroup(this, "Logs", {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role, without the AWS managed basic execution policy (logs:* on every group).
    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `Canon ${resources.plan.prefix} ${planned.role} ${planned.id}`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new nodejs.NodejsFunction(this, "Function", {
      // A declared part's entry is generated: its module and the kit's builder for its kind.
      entry: bundleEntry(requirePartModule(planned), repoRoot),
      handler: planned.handlerExport ?? "handler",
      projectRoot: repoRoot,
      depsLockFilePath: join(repoRoot, "package-lock.json"),
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? (planned.role === "replayer" ? 1024 : 512),
      timeout: props.timeout ?? defaultTimeout(planned, resources),
      // Active tracing: Lambda samples and records each invocation in X-Ray. Canon does not add
      // Powertools Tracer (it brings aws-xray-sdk-core, tens of KiB, into bundles held to
      // 100-160 KiB; test/infra/bundle-sizes.test.ts): the command's own W3C traceparent rides in
      // its message, commit, events and SNS/SQS attributes instead (shared/telemetry), and its
      // hops are on the analytics bus and the journeys index (GET /commands/{id}/trace).
      tracing: lambda.Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      environment: { NODE_OPTIONS: deployedNodeOptions },
      bundling: lambdaBundling,
    });
    Validations.of(this).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource-level permission; tracing is on for " +
        "every function. Any other action on * fails synth (infra/laws.ts, laws B and C).",
    });

    for (const [name, ref] of Object.entries(planned.env)) {
      this.function.addEnvironment(name, this.resolve(ref, resources));
    }
    ({ queueMapping: this.queueMapping, streamConsumer: this.streamConsumer } = this.addEventSource(
      planned,
      resources,
    ));
    warnIfNotExported(this, planned);

    Tags.of(this).add(tagKeys.function, planned.id);
    Tags.of(this).add(tagKeys.role, planned.role);
    Tags.of(this).add(tagKeys.owner, ownerTag(planned.owner));
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
        queue.grant(this.function, ...sendActions);
        this.grantKey(resources.queueKey(ref.id), sendKeyActions);
        return queue.queueUrl;
      }
      case "stream": {
        const stream = resources.stream(ref.bus);
        // Reading includes kinesis:ListShards (the archiver's lineage, a replayer's handover check).
        if (ref.access === "read") stream.grantRead(this.function);
        else stream.grantWrite(this.function);
        return stream.streamName;
      }
      case "bucket": {
        const bucket = resources.bucket(ref.bus);
        this.grantObjects(bucket, ref.access);
        this.grantKey(resources.bucketKey(ref.bus), objectKeyActions[ref.access]);
        return bucket.bucketName;
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

  /** A grant on a queue's or archive's key, by reference in its own stack or by alias from another. */
  private grantKey(key: kms.IKey | kms.IAlias, actions: readonly string[]): void {
    key.grant(this.function, ...actions);
    if (!(key instanceof kms.Key)) {
      Validations.of(this).acknowledge({
        // As the alias grant names it: with tokens when environment-agnostic, literals under an `env`.
        id: `AwsSolutions-IAM5[${nagResource(this, Stack.of(this).formatArn({ service: "kms", resource: "key", resourceName: "*" }))}]`,
        reason:
          "Another stack's queue or archive key, granted by alias: the statement is scoped by the " +
          "kms:ResourceAliases condition to that one alias, so no stack needs a reference to the other.",
      });
    }
  }

  /**
   * Object access to an archive bucket, named action by action: read is GetObject plus
   * ListBucket (without it a missing manifest answers 403, not 404); readWrite adds PutObject.
   * Never a delete: nothing in Canon deletes from the permanent log (versioning and Object Lock
   * guard the rest).
   */
  private grantObjects(bucket: s3.IBucket, access: "read" | "readWrite"): void {
    const objects = bucket.arnForObjects("*");
    this.function.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["s3:ListBucket"], resources: [bucket.bucketArn] }),
    );
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: access === "read" ? ["s3:GetObject"] : ["s3:GetObject", "s3:PutObject"],
        resources: [objects],
      }),
    );
    Validations.of(this).acknowledge({
      id: `AwsSolutions-IAM5[${nagResource(this, objects)}]`,
      reason:
        "The objects of a bus's archive bucket: their keys are derived from the stream (archive/, manifests/, " +
        "lineage/, claims/), so no narrower ARN names them; the statement is restricted to that one bucket.",
    });
  }

  private addEventSource(
    { source, id, startsDetached }: PlannedFunction,
    resources: PlanResources,
  ): {
    readonly queueMapping?: { readonly id: string; readonly arn: string };
    readonly streamConsumer?: kinesis.StreamConsumer;
  } {
    switch (source.kind) {
      case "sqs": {
        const mapping = new SqsEventSource(resources.queue(source.queueId), {
          batchSize: source.batchSize,
          maxConcurrency: source.maxConcurrency,
          reportBatchItemFailures: true,
          // Detached: the queue buffers (law I) until the warm-up job enables the mapping.
          ...(startsDetached === true && { enabled: false }),
        });
        this.function.addEventSource(mapping);
        return { queueMapping: { id: mapping.eventSourceMappingId, arn: mapping.eventSourceMappingArn } };
      }
      case "kinesis": {
        const failures = resources.queue(source.onFailureQueueId);
        if (failures.fifo) {
          // Lambda sends failed-batch records without a MessageGroupId, which a FIFO queue refuses.
          Annotations.of(this).addWarning(
            `${id}: on-failure destination ${source.onFailureQueueId} is a FIFO queue; AWS Lambda only delivers stream failure records to standard queues`,
          );
        }
        const stream = resources.stream(source.bus);
        const options: KinesisEventSourceProps = {
          batchSize: source.batchSize,
          maxBatchingWindow: source.batchWindowSeconds > 0 ? Duration.seconds(source.batchWindowSeconds) : undefined,
          startingPosition: lambda.StartingPosition[source.startingPosition],
          bisectBatchOnError: source.bisectBatchOnError,
          parallelizationFactor: source.parallelizationFactor,
          // Bounded (shared/plan.ts, streamRetryAttempts): a batch given up on goes to `onFailure`.
          retryAttempts: source.maxRetryAttempts,
          maxRecordAge: source.maxRecordAgeSeconds >= 0 ? Duration.seconds(source.maxRecordAgeSeconds) : undefined,
          reportBatchItemFailures: true,
          onFailure: new FailureQueue(failures, () =>
            this.grantKey(resources.queueKey(source.onFailureQueueId), sendKeyActions),
          ),
        };
        if (source.readsBy === "enhanced-fan-out") {
          if (source.consumerName === undefined)
            throw new Error(`${id}: an enhanced fan-out mapping needs a consumer name`);
          // Registered with the stream (at most 20 consumers a stream). The mapping's read grant is
          // the stream's reads plus kinesis:DescribeStreamConsumer and kinesis:SubscribeToShard on
          // this one consumer's ARN: what Lambda's poller calls to be pushed the shards' records.
          const streamConsumer = new kinesis.StreamConsumer(this, "StreamConsumer", {
            streamConsumerName: source.consumerName,
            stream,
          });
          this.function.addEventSource(new KinesisConsumerEventSource(streamConsumer, options));
          return { streamConsumer };
        }
        this.function.addEventSource(new KinesisEventSource(stream, options));
        return {};
      }
      case "http":
        return {}; // the API stack puts it behind the HTTP API
      case "job":
        return {}; // started by its warm-up job (infra/warm-up.ts)
    }
  }
}

/**
 * A stream mapping's on-failure destination: like `SqsDlq`, but granting only what sending
 * takes (`SqsDlq` grants the queue key's wildcard actions).
 */
class FailureQueue implements lambda.IEventSourceDlq {
  private readonly queue: sqs.IQueue;
  private readonly grantKey: () => void;

  constructor(queue: sqs.IQueue, grantKey: () => void) {
    this.queue = queue;
    this.grantKey = grantKey;
  }

  bind(_target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.DlqDestinationConfig {
    this.queue.grant(targetHandler, ...sendActions);
    this.grantKey();
    return { destination: this.queue.queueArn };
  }
}

/** Creates every function the owner owns, each under the construct id of its plan id. */
export function addOwnedFunctions(
  scope: Construct,
  resources: PlanResources,
  owner: Owner,
): Map<string, CanonFunction> {
  const created = new Map<string, CanonFunction>();
  for (const planned of resources.plan.functions) {
    if (sameOwner(planned.owner, owner))
      created.set(planned.id, new CanonFunction(scope, pascal(planned.id), { planned, resources }));
  }
  return created;
}

/**
 * A declared part's module must be where its service's folder says (shared/parts.ts, partModule):
 * refused at synth, naming the file, rather than by esbuild's unresolved import.
 */
function requirePartModule(planned: PlannedFunction): PlannedFunction {
  if (planned.entry === undefined || existsSync(join(repoRoot, planned.handler))) return planned;
  const { kind, service, name } = planned.entry;
  const part = name === undefined ? `the ${service} aggregate` : `${service}.${name}`;
  throw new Error(`${planned.id}: ${part} (${kind}) is declared in ${planned.handler}, which does not exist`);
}

/**
 * A handler export other than `handler` (a replayer's `replay`) is easy to forget, and Lambda
 * would only say so when first invoked: warn at synth when the module's text shows no such export.
 */
function warnIfNotExported(scope: Construct, planned: PlannedFunction): void {
  const name = planned.handlerExport;
  if (name === undefined || name === "handler" || planned.entry !== undefined) return;
  const text = readFileSync(join(repoRoot, planned.handler), "utf8");
  const exported = new RegExp(
    `export\\s+(?:async\\s+)?(?:const|let|var|function)\\s+${name}\\b|export\\s*\\{[^}]*\\b${name}\\b[^}]*\\}`,
  );
  if (!exported.test(text)) {
    Annotations.of(scope).addWarningV2(
      "canon:handler-export",
      `${planned.id}: ${planned.handler} shows no \`${name}\` export; its Lambda handler is index.${name} ` +
        `(a warming-up projection exports \`replay = replayerFor(handler, { upcasters })\`)`,
    );
  }
}

function defaultTimeout(planned: PlannedFunction, resources: PlanResources): Duration {
  if (planned.role === "replayer") return Duration.minutes(15);
  const seconds = planned.role === "relay" || planned.role === "archiver" ? 60 : 25;
  if (planned.source.kind !== "sqs") return Duration.seconds(seconds);
  return Duration.seconds(Math.min(seconds, resources.plannedQueue(planned.source.queueId).visibilityTimeoutSeconds));
}
