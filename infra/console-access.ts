/**
 * What an operator needs to run the console against a deployed app from their own machine
 * (`canon console --aws`, with their own credentials): a customer managed IAM policy,
 * `{prefix}-operator-console`, holding exactly what the console's AWS source calls
 * (`consoleActions`), each action on the app's own resources (names from the plan, the archive
 * buckets through their bus's SSM parameter, keys through their alias). Nothing in it writes a
 * table or invokes; the only things it may change are a message sent to a consumed queue (a
 * projection's redrive request, a dead letter sent back by `canon dlq move`), that dead letter's
 * deletion from its dead-letter queue, the start of a warm-up, and the start of an Athena query
 * in the telemetry bus's workgroup (the hop latency panel), whose results Athena writes. The policy names every
 * planned queue and table, so an app too large for IAM's 6,144-character limit gets
 * `{prefix}-operator-console-2`, … as well. With the context `canon:consoleOperators` (principal
 * ARNs, comma-separated) the stack also creates a role, `{prefix}-operator-console`, those
 * principals may assume for an hour at a time, with the policies attached. No endpoint is
 * deployed: the console runs where the operator is.
 *
 * The archive buckets' names are resolved from SSM at deploy time, so the stack deploys after
 * the bus stacks (infra/canon-app.ts); it references no other stack and exports nothing.
 */
import { Aws, CfnOutput, Duration, Stack, type StackProps, Tags, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type { Construct, IConstruct } from "constructs";
import { warmUpName } from "../shared/aws/deployed-names.ts";
import { type AppPlan, envNames } from "../shared/plan.ts";
import { globalBucketName } from "./archive.ts";
import { nagResource } from "./nag.ts";
import { archiveKeyAlias, pascal, queueKeyAlias, tagKeys, telemetryKeyAlias } from "./names.ts";
import { PlanResources } from "./resources.ts";
import { telemetryResultsPrefix, telemetryViewName } from "./telemetry-store.ts";

/**
 * Every action the operator console's AWS source may take, by group. Each group is one statement
 * of the policy (its Sid is the group's name in PascalCase; a group too large for one policy is
 * split into `Sid`, `Sid2`, …), on the resources its comment names. The queue groups partition
 * the queues (consumed queues, their dead-letter queues, failure queues and theirs), so each ARN
 * is written once: together they grant `GetQueueUrl` and `GetQueueAttributes` on every queue,
 * `ReceiveMessage` on dead-letter and failure queues, `DeleteMessage` only on the dead-letter
 * queues of consumed queues and `SendMessage` only on consumed queues. The key groups partition
 * the queue owners the same way: `GenerateDataKey` only for the owners of consumed queues.
 */
export const consoleActions = {
  /** Each bus's Kinesis stream: the console's own read-only tail reader (streams use the AWS managed key: no KMS grant). */
  streams: ["kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords"],
  /**
   * Every consumed queue (any planned queue that is not a failure destination: command, state,
   * projection, reactor queues): depth (a projection's lag); a redrive request, a message in a
   * projection's own queue; and `canon dlq move` (the console's Send back), which sends each of
   * the queue's dead letters back to it.
   */
  queues: ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"],
  /**
   * The dead-letter queues of the consumed queues: depth; a peek with a zero visibility timeout
   * for the messages' reasons; and `canon dlq move` (Send back), which receives each dead letter
   * and, once it is sent back to its queue, deletes it here.
   */
  deadLetters: ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
  /**
   * The failure destinations (the relay's and archiver's failure queues, dead-letter queues in all
   * but name, which `canon dlq` lists too) and their own dead-letter queues: depth, and a peek
   * only. Their messages are records to read, not work to retry: `canon dlq move` refuses them.
   */
  failureQueues: ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
  /**
   * The queue keys of the consumed queues' owners (services), by alias: SQS encrypts a message
   * sent to their queues with it (a redrive request, a dead letter sent back) and decrypts one
   * received from their dead-letter queues.
   */
  queueKeys: ["kms:GenerateDataKey", "kms:Decrypt"],
  /**
   * The queue keys of the failure queues' owners (buses) that own no consumed queue, by alias:
   * SQS decrypts a peeked message with it. Nothing is sent to their queues.
   */
  failureQueueKeys: ["kms:Decrypt"],
  /**
   * Every planned table (AWS managed key: no KMS grant): item counts, parks, recent commands, and a
   * command's journey (a Query of the journeys index by trace id). Read only.
   */
  tables: ["dynamodb:DescribeTable", "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:Query"],
  /** Each bus's archive bucket (its name from the bus's SSM parameter): list the manifests. */
  archiveBuckets: ["s3:ListBucket"],
  /** The objects of each archive bucket: manifests, and archived records. */
  archiveObjects: ["s3:GetObject"],
  /** Each archive's key, by alias: S3 decrypts the objects with it. */
  archiveKeys: ["kms:Decrypt"],
  /** The app's SSM parameters (`/canon/{prefix}/*`): where each bus's stream, topic and archive are. */
  parameters: ["ssm:GetParameter"],
  /**
   * Actions that take no resource-level permission, hence on `*`: metrics (rates, iterator age,
   * queue age), event source mappings (attached or detached), resources by `canon:*` tag (the
   * functions), and state machines.
   */
  unscoped: [
    "cloudwatch:GetMetricData",
    "lambda:ListEventSourceMappings",
    "tag:GetResources",
    "states:ListStateMachines",
  ],
  /**
   * The telemetry bus's Athena workgroup: the hop latency percentiles (a query started, waited
   * for, its results read). Starting a query is the one thing it runs; the workgroup caps its scan.
   */
  telemetryQueries: ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"],
  /** The Glue catalog, database and tables Athena resolves the `telemetry` view through. Read only. */
  telemetryCatalog: ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
  /** The bucket of the Parquet files: Athena lists it, as the caller. */
  telemetryBucket: ["s3:ListBucket", "s3:GetBucketLocation"],
  /** The Parquet files and Athena's results: read by Athena as the caller. */
  telemetryObjects: ["s3:GetObject"],
  /** Athena's results, written by Athena as the caller under the workgroup's prefix only. */
  telemetryResults: ["s3:PutObject", "s3:AbortMultipartUpload"],
  /** The files' key, by alias: S3 decrypts the files and encrypts the results with it. */
  telemetryKeys: ["kms:Decrypt", "kms:GenerateDataKey"],
  /** The warm-up state machines (one per projection declared with `warmUp`): start one, list its runs. */
  warmUps: ["states:StartExecution", "states:ListExecutions"],
  /** Their executions: a warm-up's progress. */
  warmUpExecutions: ["states:DescribeExecution", "states:GetExecutionHistory"],
} as const satisfies Record<string, readonly string[]>;

export type ConsoleActionGroup = keyof typeof consoleActions;

/** The CDK context key naming the principals that may assume the operator console role. */
export const consoleOperatorsContextKey = "canon:consoleOperators";

/** The managed policy's name, and the role's (IAM names are global to the account). */
export function consoleAccessName(prefix: string): string {
  return `${prefix}-operator-console`;
}

/**
 * IAM's limit on a managed policy's size: 6,144 characters, whitespace not counted. The policy
 * names every planned queue and table, so it grows with the app; past this it is split.
 */
export const managedPolicyMaxSize = 6144;

export interface ConsoleAccessStackProps extends StackProps {
  readonly plan: AppPlan;
  /**
   * Principal ARNs (an SSO permission set's role, a user, a role, an account's root) that may
   * assume the operator console role. @default none: no role, only the managed policy
   */
  readonly operators?: readonly string[];
}

export class ConsoleAccessStack extends Stack {
  /**
   * The managed policies, `{prefix}-operator-console` first: one for most apps; an app whose
   * statements exceed IAM's size limit gets `{prefix}-operator-console-2`, … as well, and an
   * operator needs all of them (the role has all of them).
   */
  readonly policies: readonly iam.ManagedPolicy[];
  /** The role operators assume, when `operators` were given. */
  readonly role?: iam.Role;

  constructor(scope: Construct, id: string, props: ConsoleAccessStackProps) {
    super(scope, id, props);
    const { plan } = props;
    const name = consoleAccessName(plan.prefix);
    Tags.of(this).add(tagKeys.app, plan.prefix);

    // The archive buckets, found by name through their bus's SSM parameter, as a service stack finds them.
    const resources = new PlanResources(this, plan);
    const documents = packStatements(this, consoleStatements(plan, resources));
    this.policies = documents.map((statements, index) => {
      const n = index === 0 ? "" : String(index + 1);
      const policy = new iam.ManagedPolicy(this, `Policy${n}`, {
        managedPolicyName: n === "" ? name : `${name}-${n}`,
        description:
          `Canon ${plan.prefix}: what the operator console (canon console --aws) reads, plus redrive, send back and warm-up` +
          (documents.length > 1 ? ` (${index + 1} of ${documents.length})` : ""),
        statements: statements.map((packed) => packed.statement),
      });
      acknowledgeWildcards(policy, statements);
      new CfnOutput(this, `PolicyArn${n}`, {
        value: policy.managedPolicyArn,
        description:
          documents.length === 1
            ? "Attach to the operator's principal (an SSO permission set, a user or a role), then run `canon console --aws` with its credentials"
            : `Policy ${index + 1} of ${documents.length}: attach all of them to the operator's principal (an SSO permission set, a user or a role), then run \`canon console --aws\` with its credentials`,
      });
      return policy;
    });

    const operators = props.operators ?? [];
    if (operators.length > 0) {
      for (const arn of operators) checkOperatorArn(arn);
      this.role = new iam.Role(this, "Role", {
        roleName: name,
        description: `Canon ${plan.prefix}: the operator console (canon console --aws)`,
        assumedBy: new iam.CompositePrincipal(...operators.map((arn) => new iam.ArnPrincipal(arn))),
        maxSessionDuration: Duration.hours(1),
        managedPolicies: [...this.policies],
      });
      new CfnOutput(this, "RoleArn", {
        value: this.role.roleArn,
        description:
          "Assume this role (e.g. an AWS profile with role_arn = this and source_profile = yours), then run `canon console --aws`",
      });
    }
  }
}

/** A statement of a policy, with the group of `consoleActions` it grants. */
interface PackedStatement {
  readonly group: ConsoleActionGroup;
  readonly statement: iam.PolicyStatement;
}

/** One statement's content, before it is sized and, if need be, split. */
interface StatementSpec {
  readonly group: ConsoleActionGroup;
  readonly resources: readonly string[];
  readonly conditions?: Record<string, unknown>;
}

/** One statement per group of `consoleActions`, on the plan's resources; a group with nothing to act on is left out. */
function consoleStatements(plan: AppPlan, resources: PlanResources): StatementSpec[] {
  const anyKey = arn("kms", "key/*");
  const byAlias = (aliases: readonly string[]) => {
    const unique = [...new Set(aliases)];
    return { "ForAnyValue:StringEquals": { "kms:ResourceAliases": unique.length === 1 ? unique[0] : unique } };
  };
  const queue = (name: string) => arn("sqs", name);

  const failures = failureQueues(plan);
  const consumed = plan.queues.filter((q) => !failures.includes(q));
  const keyAlias = (q: AppPlan["queues"][number]) => queueKeyAlias(plan.prefix, q.owner);
  // The owners of consumed queues get GenerateDataKey and Decrypt; the other owners received from, Decrypt alone.
  const consumedKeys = new Set(consumed.map(keyAlias));
  const failureKeys = failures.map(keyAlias).filter((alias) => !consumedKeys.has(alias));
  const machines = plan.functions
    .filter((fn) => fn.role === "projection" && fn.startsDetached === true)
    .map((fn) => warmUpName(plan.prefix, fn.id));
  const buses = plan.buckets.map((bucket) => bucket.bus);

  const groups: Record<ConsoleActionGroup, Omit<StatementSpec, "group">> = {
    streams: { resources: plan.streams.map((s) => arn("kinesis", `stream/${s.name}`)) },
    queues: { resources: consumed.map((q) => queue(q.name)) },
    deadLetters: { resources: consumed.map((q) => queue(q.deadLetterQueueName)) },
    failureQueues: { resources: failures.flatMap((q) => [queue(q.name), queue(q.deadLetterQueueName)]) },
    queueKeys: { resources: consumedKeys.size > 0 ? [anyKey] : [], conditions: byAlias([...consumedKeys]) },
    failureQueueKeys: { resources: failureKeys.length > 0 ? [anyKey] : [], conditions: byAlias(failureKeys) },
    tables: { resources: plan.tables.map((t) => arn("dynamodb", `table/${t.name}`)) },
    archiveBuckets: { resources: buses.map((bus) => resources.bucket(bus).bucketArn) },
    archiveObjects: { resources: buses.map((bus) => resources.bucket(bus).arnForObjects("*")) },
    archiveKeys: {
      resources: buses.length > 0 ? [anyKey] : [],
      conditions: byAlias(buses.map((bus) => archiveKeyAlias(plan.prefix, bus))),
    },
    parameters: { resources: [parametersArn(plan.prefix)] },
    telemetryQueries: { resources: plan.telemetry.map((t) => arn("athena", `workgroup/${t.workGroup}`)) },
    telemetryCatalog: {
      resources: plan.telemetry.flatMap((t) => [
        arn("glue", "catalog"),
        arn("glue", `database/${t.database}`),
        arn("glue", `table/${t.database}/${t.table}`),
        arn("glue", `table/${t.database}/${telemetryViewName}`),
      ]),
    },
    telemetryBucket: { resources: plan.telemetry.map((t) => bucketArn(t.bucket)) },
    telemetryObjects: {
      resources: plan.telemetry.flatMap((t) => [
        `${bucketArn(t.bucket)}/${t.prefix}*`,
        `${bucketArn(t.bucket)}/${telemetryResultsPrefix}*`,
      ]),
    },
    telemetryResults: { resources: plan.telemetry.map((t) => `${bucketArn(t.bucket)}/${telemetryResultsPrefix}*`) },
    telemetryKeys: {
      resources: plan.telemetry.length > 0 ? [anyKey] : [],
      conditions: byAlias(plan.telemetry.map((t) => telemetryKeyAlias(plan.prefix, t.bus))),
    },
    unscoped: { resources: ["*"] },
    warmUps: { resources: machines.map((m) => arn("states", `stateMachine:${m}`)) },
    warmUpExecutions: { resources: machines.map((m) => executionsArn(m)) },
  };
  return Object.entries(groups).flatMap(([group, spec]) =>
    spec.resources.length === 0
      ? []
      : [{ ...spec, group: group as ConsoleActionGroup, resources: [...new Set(spec.resources)] }],
  );
}

/**
 * The statements, in order, packed into as few policy documents as IAM's size limit allows, a
 * statement too large for one document split by resources. Sizes are measured on the resolved
 * statements with the longest partition, region and bucket name a deploy could substitute.
 */
function packStatements(stack: Stack, specs: readonly StatementSpec[]): PackedStatement[][] {
  // `{"Version":"2012-10-17","Statement":[…]}`, with a margin.
  const budget = managedPolicyMaxSize - 64;
  const statement = (spec: StatementSpec, resources: readonly string[], part: number) =>
    new iam.PolicyStatement({
      sid: `${pascal(spec.group)}${part === 1 ? "" : part}`,
      actions: [...consoleActions[spec.group]],
      resources: [...resources],
      ...(spec.conditions && { conditions: spec.conditions }),
    });
  const documents: PackedStatement[][] = [[]];
  let used = 0;
  const add = (group: ConsoleActionGroup, candidate: iam.PolicyStatement, size: number) => {
    if (used + size > budget && (documents.at(-1)?.length ?? 0) > 0) {
      documents.push([]);
      used = 0;
    }
    documents.at(-1)?.push({ group, statement: candidate });
    used += size;
  };
  for (const spec of specs) {
    let part = 1;
    let taken: string[] = [];
    for (const resource of spec.resources) {
      const next = [...taken, resource];
      if (taken.length > 0 && worstCaseSize(stack, statement(spec, next, part)) > budget) {
        const full = statement(spec, taken, part);
        add(spec.group, full, worstCaseSize(stack, full));
        part += 1;
        taken = [resource];
      } else {
        taken = next;
      }
    }
    const last = statement(spec, taken, part);
    add(spec.group, last, worstCaseSize(stack, last));
  }
  return documents;
}

/** Characters (and a separating comma) of a statement once deployed, at worst: IAM does not count whitespace. */
function worstCaseSize(stack: Stack, statement: iam.PolicyStatement): number {
  const longest: Record<string, string> = {
    // The longest partition of cdk.json's target partitions (aws, aws-cn), and the longest region name.
    "AWS::Partition": "aws-cn",
    "AWS::Region": "ap-southeast-5",
    "AWS::AccountId": "123456789012",
  };
  // biome-ignore lint/suspicious/noExplicitAny: resolved CloudFormation JSON
  const render = (value: any): any => {
    if (Array.isArray(value)) return value.map(render);
    if (value === null || typeof value !== "object") return value;
    // Any other reference is an archive bucket's name (at most 63 characters).
    if (typeof value.Ref === "string") return longest[value.Ref] ?? "b".repeat(63);
    if (Array.isArray(value["Fn::Join"])) return render(value["Fn::Join"][1]).join(value["Fn::Join"][0]);
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, render(inner)]));
  };
  return JSON.stringify(render(stack.resolve(statement.toStatementJson()))).length + 1;
}

/**
 * The queues that are failure destinations (a stream mapping's on-failure queue, a function's
 * dead-letter queue URL), as `canon dlq` finds them (shared/runner/endpoints.ts).
 */
function failureQueues(plan: AppPlan): AppPlan["queues"][number][] {
  const ids = new Set<string>();
  for (const fn of plan.functions) {
    if (fn.source.kind === "kinesis") ids.add(fn.source.onFailureQueueId);
    const ref = fn.env[envNames.deadLetterQueueUrl];
    if (ref?.kind === "queue") ids.add(ref.id);
  }
  return plan.queues.filter((q) => ids.has(q.id));
}

/** An ARN in the deploying account and region (the stacks are environment-agnostic). */
function arn(service: string, resource: string): string {
  return `arn:${Aws.PARTITION}:${service}:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;
}

/** A bucket's ARN from its local name, made globally unique as its stack makes it. */
function bucketArn(localName: string): string {
  return `arn:${Aws.PARTITION}:s3:::${globalBucketName(localName)}`;
}

/** Every SSM parameter of the app. */
function parametersArn(prefix: string): string {
  return arn("ssm", `parameter/canon/${prefix}/*`);
}

/** Every execution of one state machine. */
function executionsArn(machine: string): string {
  return arn("states", `execution:${machine}:*`);
}

/**
 * Why each group's wildcard resource is as narrow as IAM allows: cdk-nag's IAM5 findings on a
 * policy are acknowledged with these, for the wildcards its statements hold.
 */
const wildcardReasons: Partial<Record<ConsoleActionGroup, string>> = {
  unscoped:
    `Only ${consoleActions.unscoped.join(", ")}: they take no resource-level permission in IAM. Every other ` +
    "action of the operator console's policy names the app's own resources.",
  queueKeys: keysReason(),
  failureQueueKeys: keysReason(),
  archiveKeys: keysReason(),
  parameters: "The app's own SSM parameters (/canon/{prefix}/…, read only): the console reads each bus's parameters.",
  telemetryKeys: keysReason(),
  telemetryObjects:
    "The telemetry bus's Parquet files (read only), named by Firehose with a time and a random identifier, and " +
    "Athena's results, named by the query's identifier: no narrower ARN names them; each is one prefix of one bucket.",
  telemetryResults:
    "Athena writes a query's results as the caller, under the workgroup's results prefix only; their names are " +
    "the query identifiers, so no narrower ARN names them.",
  archiveObjects:
    "The objects of a bus's archive bucket, read only: their keys are derived from the stream (archive/, " +
    "manifests/, lineage/, claims/), so no narrower ARN names them; each resource is restricted to one bucket.",
  warmUpExecutions:
    "The executions of one warm-up state machine (read only: describe, history): their names are chosen when " +
    "they start, so no narrower ARN names them.",
};

function keysReason(): string {
  return (
    "Queue, archive and telemetry keys of other stacks, granted by alias: the statement is scoped by the kms:ResourceAliases " +
    "condition to the app's own aliases, so this stack needs no reference to the stacks that own the keys."
  );
}

/** Acknowledges the IAM5 finding of each wildcard resource of the policy's statements, with its group's reason. */
function acknowledgeWildcards(policy: IConstruct, statements: readonly PackedStatement[]): void {
  for (const { group, statement } of statements) {
    for (const resource of statement.resources) {
      if (!resource.includes("*")) continue;
      const reason = wildcardReasons[group];
      if (reason === undefined)
        throw new Error(`console access: ${group} has a wildcard resource and no reason for it`);
      Validations.of(policy).acknowledge({ id: `AwsSolutions-IAM5[${nagResource(policy, resource)}]`, reason });
    }
  }
}

/** An IAM principal ARN a role's trust policy can name: a user, a role, an account's root, an assumed-role session. */
function checkOperatorArn(arn: string): void {
  if (!/^arn:aws[a-z-]*:(iam::\d{12}:(root|user\/.+|role\/.+)|sts::\d{12}:assumed-role\/.+)$/.test(arn)) {
    throw new Error(
      `${consoleOperatorsContextKey} must list IAM principal ARNs (arn:aws:iam::<account>:role/…, …:user/…, ` +
        `…:root), comma-separated; "${arn}" is not one`,
    );
  }
}

/** `canon:consoleOperators` from CDK context: "arn1,arn2" (or a list in cdk.json); undefined when unset or empty. */
export function consoleOperatorsFromContext(scope: IConstruct): string[] | undefined {
  const value: unknown = scope.node.tryGetContext(consoleOperatorsContextKey);
  if (value === undefined || value === null) return undefined;
  const items = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : undefined;
  if (items === undefined || items.some((item) => typeof item !== "string")) {
    throw new Error(
      `${consoleOperatorsContextKey} must be principal ARNs, comma-separated, not ${JSON.stringify(value)}`,
    );
  }
  const operators = (items as string[]).map((item) => item.trim()).filter((item) => item !== "");
  for (const arn of operators) checkOperatorArn(arn);
  return operators.length > 0 ? operators : undefined;
}
