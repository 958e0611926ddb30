/**
 * The laws of the design (ARCHITECTURE §2, §6), checked by a CDK Aspect over the synthesized
 * constructs: the policies attached to every function's role after all grants (what each
 * statement allows on which resource, resolved to its owner), every queue, subscription,
 * stream mapping and store. A violation fails `cdk synth` (and `app.synth()`) with a message
 * that names the law and the construct.
 */
import { AspectPriority, Aspects, CfnResource, type IAspect, Stack } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as kinesis from "aws-cdk-lib/aws-kinesis";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import type { IConstruct } from "constructs";
import { type AppPlan, envNames, ids, type Owner, type PlannedFunction } from "../shared/plan.ts";
import { subjectKeysTableName } from "../shared/privacy/env.ts";
import { actionMatches, actionsOn, type Grant, resolveTarget, roleGrants, stackOwner, type Target } from "./grants.ts";
import { functionRoles, isFunctionRole, ownerTag, parseOwnerTag, sameOwner, tagKeys } from "./names.ts";
import { subjectKeyActions } from "./privacy.ts";

/** Each law as it is named in a violation. */
export const laws = {
  A: "Law A (the stream is the single source of truth: only its bus's relay publishes to a bus topic)",
  B: "Law B (each service owns its stack, tables and queues)",
  BC: "Law B/C (a node touches only its own tables, queues and buckets, and its bus's archive, and a command handler reads its bus's arbitration heads; only the API and declared reactors send commands, only the API reads query tables and the journeys index)",
  C: "Law C (nodes never talk to each other: no function invokes a function)",
  D: "Law D (a command handler never writes its read model: it appends to the stream, and its own projection records the event)",
  F: "Law F (fanout consumers publish nothing: a projection, and its replayer, write no stream, topic, queue or bucket, but their telemetry to a telemetry bus; the journey indexer writes no stream)",
  DLQ: "Law DLQ (every queue, subscription and stream consumer has a dead-letter destination)",
  KMS: "Law KMS (every stream, topic, queue, table and bucket is encrypted with KMS)",
  ROLE: `Law ROLE (every function carries a ${tagKeys.role} tag: ${functionRoles.join(", ")})`,
} as const;

const writes = {
  stream: ["kinesis:PutRecord", "kinesis:PutRecords"],
  topic: ["sns:Publish"],
  queue: ["sqs:SendMessage", "sqs:SendMessageBatch"],
  bucket: ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
} as const;
/** The roles law F binds: fanout consumers, and the jobs that replay into them. */
const fanoutRoles = new Set(["projection", "replayer"]);
const invokes = ["lambda:InvokeFunction", "lambda:InvokeAsync", "lambda:InvokeWithResponseStream"];
/** What reading a table takes (`grantReadData`). */
const tableReads = new Set(
  [
    "BatchGetItem",
    "ConditionCheckItem",
    "DescribeTable",
    "GetItem",
    "GetRecords",
    "GetShardIterator",
    "Query",
    "Scan",
  ].map((a) => `dynamodb:${a}`.toLowerCase()),
);
/** What writing a table takes (`grantWriteData`), and what would write it anyway. */
const tableWrites = [
  "BatchWriteItem",
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "PartiQLInsert",
  "PartiQLUpdate",
  "PartiQLDelete",
].map((a) => `dynamodb:${a}`);
/** What sending to a queue takes. */
const queueSends = new Set(
  ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"].map((a) => a.toLowerCase()),
);

/** Applies the laws to every construct under `scope` (an app or a stack). */
export function applyLaws(scope: IConstruct, plan: AppPlan): void {
  Aspects.of(scope).add(new CanonLaws(plan), { priority: AspectPriority.READONLY });
}

export class CanonLaws implements IAspect {
  private readonly plan: AppPlan;
  /** The tables projections write (read models, a service's state among them): law D's. */
  private readonly readModels: ReadonlySet<string>;

  constructor(plan: AppPlan) {
    this.plan = plan;
    const written = plan.functions
      .filter((f) => f.role === "projection")
      .flatMap((f) =>
        Object.values(f.env).flatMap((r) => (r.kind === "table" && r.access === "readWrite" ? [r.id] : [])),
      );
    this.readModels = new Set(plan.tables.filter((t) => written.includes(t.id)).map((t) => t.name));
  }

  visit(node: IConstruct): void {
    const violations = this.check(node);
    // Reported by synthesis, after every aspect: all violations at once, each with its path.
    if (violations.length > 0) node.node.addValidation({ validate: () => violations });
  }

  private check(node: IConstruct): string[] {
    if (node instanceof lambda.CfnFunction) return this.checkFunction(node);
    if (CfnResource.isCfnResource(node) && node.cfnResourceType === "AWS::Lambda::Function") {
      return [`${laws.ROLE}: this function is not a lambda.CfnFunction, so it carries no tags`];
    }
    if (node instanceof sqs.CfnQueue) return [...checkDeadLetters(node), ...checkEncrypted(node)];
    if (node instanceof sns.CfnSubscription) {
      if (resolve(node, node.redrivePolicy) !== undefined) return [];
      const endpoint = resolveTarget(node, this.plan, node.endpoint).text;
      return [`${laws.DLQ}: the subscription of ${endpoint} has no redrive policy; what SNS cannot deliver is lost`];
    }
    if (node instanceof lambda.CfnEventSourceMapping) return this.checkStreamMapping(node);
    return checkEncrypted(node);
  }

  private checkFunction(fn: lambda.CfnFunction): string[] {
    const tags = fn.tags.tagValues();
    const role = tags[tagKeys.role];
    const owner = parseOwnerTag(tags[tagKeys.owner]);
    if (!isFunctionRole(role)) return [`${laws.ROLE}: found ${role === undefined ? "no tag" : `"${role}"`}`];
    if (!owner) return [`${laws.B}: the function has no valid ${tagKeys.owner} tag ("bus:…", "service:…" or "api")`];
    const violations: string[] = [];
    const home = stackOwner(fn);
    if (home && !sameOwner(home, owner)) {
      violations.push(`${laws.B}: a function of ${ownerTag(owner)} lives in the stack of ${ownerTag(home)}`);
    }
    const planned = this.plan.functions.find((f) => f.id === tags[tagKeys.function] && sameOwner(f.owner, owner));
    const { grants, unknown } = roleGrants(fn, this.plan);
    for (const reason of unknown) violations.push(`${laws.BC}: ${reason}`);
    const who = `${tags[tagKeys.function] ?? fn.node.path} (${role} of ${ownerTag(owner)})`;
    for (const grant of grants) {
      for (const target of grant.targets) {
        violations.push(...this.checkGrant({ who, role, owner, planned, id: tags[tagKeys.function] }, grant, target));
      }
    }
    return [...new Set(violations)];
  }

  private checkGrant(fn: Caller, grant: Grant, target: Target): string[] {
    const violations: string[] = [];
    const actions = actionsOn(grant, target.kind);
    const allowed = (candidates: readonly string[]) =>
      candidates.filter((a) => actions.some((p) => actionMatches(p, a)));
    const on = `${target.kind === "any" ? "every resource (*)" : `${target.kind} ${target.name}`} (${grant.policy})`;

    if (target.kind === "function" || target.kind === "any") {
      const invoking = allowed(invokes);
      if (invoking.length > 0) violations.push(`${laws.C}: ${fn.who} may ${invoking.join(", ")} on ${on}`);
    }
    if (fanoutRoles.has(fn.role)) {
      for (const kind of ["stream", "topic", "queue", "bucket"] as const) {
        if (target.kind !== kind && target.kind !== "any") continue;
        // Its telemetry is no publishing: nothing subscribes to a telemetry bus (law K).
        if (kind === "stream" && this.isTelemetryStream(target)) continue;
        const writing = allowed(writes[kind]);
        if (writing.length > 0) violations.push(`${laws.F}: ${fn.who} may ${writing.join(", ")} on ${on}`);
      }
    }
    // The journey indexer consumes the telemetry stream and writes only its index: a record it put
    // on any stream, its own first, would publish from a consumer (and feed itself).
    if (fn.role === "journeys" && (target.kind === "stream" || target.kind === "any")) {
      const writing = allowed(writes.stream);
      if (writing.length > 0) violations.push(`${laws.F}: ${fn.who} may ${writing.join(", ")} on ${on}`);
    }
    if (
      fn.role === "command-handler" &&
      (target.kind === "any" || (target.kind === "table" && this.readModels.has(target.name)))
    ) {
      const writing = allowed(tableWrites);
      if (writing.length > 0) {
        violations.push(`${laws.D}: ${fn.who} may ${writing.join(", ")} on ${on}, a read model its projection writes`);
      }
    }
    if (target.kind === "topic" || target.kind === "any") {
      const publishing = allowed(writes.topic);
      const ownRelay =
        fn.role === "relay" &&
        target.owner?.kind === "bus" &&
        fn.owner.kind === "bus" &&
        sameOwner(fn.owner, target.owner);
      if (publishing.length > 0 && !ownRelay && !fanoutRoles.has(fn.role)) {
        violations.push(`${laws.A}: ${fn.who} may sns:Publish on ${on}`);
      }
    }
    if (target.kind === "table" || target.kind === "queue" || target.kind === "bucket" || target.kind === "any") {
      const touching = target.kind === "any" ? actions.filter((a) => /^(\*|dynamodb:|sqs:|s3:)/i.test(a)) : actions;
      if (touching.length > 0 && !this.mayTouch(fn, target, touching)) {
        const whose = target.owner ? `owned by ${ownerTag(target.owner)}` : "whose owner the plan does not know";
        violations.push(`${laws.BC}: ${fn.who} may ${touching.join(", ")} on ${on}, ${whose}`);
      }
    }
    return violations;
  }

  /** A telemetry bus's stream, by name (a wildcard is none). */
  private isTelemetryStream(target: Target): boolean {
    return (
      target.kind === "stream" &&
      !target.wildcard &&
      this.plan.streams.some(
        (s) => s.kind === "telemetry" && target.owner?.kind === "bus" && s.bus === target.owner.name,
      )
    );
  }

  /** Whether the function may take these actions on another node's table, queue or bucket. */
  private mayTouch(fn: Caller, target: Target, actions: readonly string[]): boolean {
    // The app's subject keys (infra/privacy.ts): each role only what sealing or opening takes.
    if (target.kind === "table" && !target.wildcard && target.name === subjectKeysTableName(this.plan.prefix)) {
      const mayDo = subjectKeyActions(fn.role, fn.planned?.id ?? fn.id);
      return actions.every((a) => mayDo.some((m) => m.toLowerCase() === a.toLowerCase()));
    }
    if (target.kind === "any" || target.wildcard || target.owner === undefined) return false;
    if (sameOwner(target.owner, fn.owner)) return true;
    // A bus's archive is the bus's log, like its stream: any node may read it (a replay, a claim
    // check); what a fanout consumer may not write is law F's business.
    if (target.kind === "bucket") return target.owner.kind === "bus";
    // A bus's arbitration heads are its verdicts on the commits appended to it: a command handler
    // of a service on that bus may read them (to learn its commit's fate), never write them.
    if (target.kind === "table" && fn.role === "command-handler" && target.owner.kind === "bus" && fn.planned) {
      const table = this.plan.tables.find((t) => t.name === target.name);
      const bus = target.owner.name;
      const ownBus = Object.values(fn.planned.env).some(
        (r) =>
          r.kind === "table" && r.id === table?.id && r.access === "read" && table.id === ids.arbitrationTable(bus),
      );
      const onBus = Object.entries(fn.planned.env).some(
        ([name, r]) => name === envNames.bus && r.kind === "value" && r.value === bus,
      );
      return ownBus && onBus && actions.every((a) => tableReads.has(a.toLowerCase()));
    }
    // The journeys index of a telemetry bus: the API reads it for the trace route, as the plan declares.
    if (target.kind === "table" && fn.role === "api" && target.owner.kind === "bus" && fn.planned) {
      const table = this.plan.tables.find((t) => t.name === target.name);
      const declared = Object.values(fn.planned.env).some(
        (r) => r.kind === "table" && r.id === table?.id && r.id === ids.journeysTable() && r.access === "read",
      );
      return declared && actions.every((a) => tableReads.has(a.toLowerCase()));
    }
    // Across owners, only what the plan declares for the API and reactors, and only to read or send.
    if ((fn.role !== "api" && fn.role !== "reactor") || !fn.planned || target.owner.kind !== "service") return false;
    const owner: Owner = target.owner;
    const refs = Object.values(fn.planned.env);
    if (target.kind === "table") {
      const table = this.plan.tables.find((t) => t.name === target.name);
      const declared = refs.some((r) => r.kind === "table" && r.id === table?.id && r.access === "read");
      return fn.role === "api" && declared && actions.every((a) => tableReads.has(a.toLowerCase()));
    }
    const queue = this.plan.queues.find((q) => q.name === target.name);
    const commands = queue !== undefined && owner.kind === "service" && queue.id === ids.commandQueue(owner.name);
    const declared = refs.some((r) => r.kind === "queue" && r.id === queue?.id);
    return commands && declared && actions.every((a) => queueSends.has(a.toLowerCase()));
  }

  /** A stream mapping gives up on a batch only into an on-failure destination. */
  private checkStreamMapping(mapping: lambda.CfnEventSourceMapping): string[] {
    const source = resolveTarget(mapping, this.plan, mapping.eventSourceArn);
    const fromStream = source.kind === "stream" || /:dynamodb:.*\/stream\//.test(source.text);
    const destination = resolve(mapping, mapping.destinationConfig) as
      | { onFailure?: { destination?: unknown } }
      | undefined;
    return fromStream && destination?.onFailure?.destination === undefined
      ? [`${laws.DLQ}: the mapping from ${source.text} has no on-failure destination; a batch given up on would vanish`]
      : [];
  }
}

interface Caller {
  readonly who: string;
  /** Its `canon:function` tag. */
  readonly id?: string | undefined;
  readonly role: string;
  readonly owner: Owner;
  readonly planned: PlannedFunction | undefined;
}

function resolve(node: IConstruct, value: unknown): unknown {
  return Stack.of(node).resolve(value);
}

/** A queue has a dead-letter queue, or is one for another queue or subscription of its stack. */
function checkDeadLetters(queue: sqs.CfnQueue): string[] {
  if (resolve(queue, queue.redrivePolicy) !== undefined) return [];
  const arn = JSON.stringify(resolve(queue, queue.attrArn));
  const deadLetterFor = Stack.of(queue)
    .node.findAll()
    .some((other) => {
      const redrive =
        other instanceof sqs.CfnQueue || other instanceof sns.CfnSubscription
          ? (resolve(other, other.redrivePolicy) as { deadLetterTargetArn?: unknown } | undefined)
          : undefined;
      return redrive !== undefined && JSON.stringify(redrive.deadLetterTargetArn) === arn;
    });
  return deadLetterFor ? [] : [`${laws.DLQ}: queue ${nameOf(queue, queue.queueName)} has no dead-letter queue`];
}

/** Stores encrypted with KMS (AWS managed or customer managed keys). */
function checkEncrypted(node: IConstruct): string[] {
  const fail = (what: string) => [`${laws.KMS}: ${what} is not encrypted with KMS`];
  if (node instanceof sqs.CfnQueue) {
    return resolve(node, node.kmsMasterKeyId) === undefined
      ? fail(`queue ${String(resolve(node, node.queueName))}`)
      : [];
  }
  if (node instanceof sns.CfnTopic) {
    return resolve(node, node.kmsMasterKeyId) === undefined ? fail(`topic ${nameOf(node, node.topicName)}`) : [];
  }
  if (node instanceof kinesis.CfnStream) {
    const encryption = resolve(node, node.streamEncryption) as { encryptionType?: string } | undefined;
    return encryption?.encryptionType === "KMS" ? [] : fail(`stream ${nameOf(node, node.name)}`);
  }
  if (node instanceof dynamodb.CfnTable || node instanceof dynamodb.CfnGlobalTable) {
    const sse = resolve(node, node.sseSpecification) as { sseEnabled?: boolean } | undefined;
    return sse?.sseEnabled === true ? [] : fail(`table ${nameOf(node, node.tableName)}`);
  }
  if (node instanceof s3.CfnBucket) {
    const encryption = resolve(node, node.bucketEncryption) as
      | { serverSideEncryptionConfiguration?: { serverSideEncryptionByDefault?: { sseAlgorithm?: string } }[] }
      | undefined;
    const kms = encryption?.serverSideEncryptionConfiguration?.every((rule) =>
      rule.serverSideEncryptionByDefault?.sseAlgorithm?.startsWith("aws:kms"),
    );
    return kms === true ? [] : fail(`bucket ${nameOf(node, node.bucketName)}`);
  }
  return [];
}

/** A resource's physical name if it sets one, else its construct path. */
function nameOf(node: IConstruct, name: unknown): string {
  const resolved = resolve(node, name);
  return typeof resolved === "string" ? resolved : node.node.path;
}
