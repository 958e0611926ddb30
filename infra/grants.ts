/**
 * What a function's role may do, read from the synthesized constructs: the statements of
 * every policy attached to its role, each resource they name resolved to a kind (table,
 * queue, stream, topic, function, …), a physical name and an owner. References are followed
 * to the resource they point at in the stack, SSM parameters to the bus they publish, and
 * literal ARNs to the plan's physical names. Used by the laws aspect (infra/laws.ts).
 */
import { CfnElement, CfnParameter, CfnResource, Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type { IConstruct } from "constructs";
import type { AppPlan, Owner } from "../shared/plan.ts";
import { busParameters, parseOwnerTag, tagKeys } from "./names.ts";

export type TargetKind = "table" | "queue" | "stream" | "topic" | "bucket" | "function" | "key" | "other" | "any";

/** One resource a statement names. */
export interface Target {
  readonly kind: TargetKind;
  /** Physical name (may hold IAM wildcards); for `any`, "*". */
  readonly name: string;
  /** undefined: not known to the plan nor created in the stack. */
  readonly owner: Owner | undefined;
  /** The name holds `*` or `?`: it may match resources of any owner. */
  readonly wildcard: boolean;
}

/** One Allow statement of a role's policies. */
export interface Grant {
  /** IAM action patterns (`service:Action`, may hold wildcards); `NotAction` counts as "*". */
  readonly actions: readonly string[];
  readonly targets: readonly Target[];
  /** The construct path of the policy it comes from. */
  readonly policy: string;
}

/** What the role of a function may do, or why it cannot be known. */
export type RoleGrants = { readonly grants: readonly Grant[]; readonly unknown: readonly string[] };

// biome-ignore lint/suspicious/noExplicitAny: resolved CloudFormation JSON
type Json = any;

/** AWS managed policies whose statements touch no store: logs and traces only. */
const harmlessManagedPolicies = new Set([
  "service-role/AWSLambdaBasicExecutionRole",
  "AWSXRayDaemonWriteAccess",
  "AWSXrayWriteOnlyAccess",
]);

/** The statements every policy attached to the function's role allows. */
export function roleGrants(fn: lambda.CfnFunction, plan: AppPlan): RoleGrants {
  const stack = Stack.of(fn);
  const index = elementsOf(stack);
  const roleId = logicalIdIn(stack.resolve(fn.role));
  const role = roleId === undefined ? undefined : index.get(roleId);
  if (!(role instanceof iam.CfnRole)) {
    return { grants: [], unknown: [`its role is not defined in stack ${stack.stackName}, so it cannot be checked`] };
  }
  const resolver = new Resolver(stack, plan, index);
  const grants: Grant[] = [];
  const unknown: string[] = [];
  const addDocument = (document: Json, policy: string) => {
    for (const statement of [document?.Statement ?? []].flat()) {
      if (statement.Effect !== "Allow") continue;
      const actions: string[] = statement.NotAction === undefined ? [statement.Action].flat() : ["*"];
      const resources: Json[] = statement.NotResource === undefined ? [statement.Resource].flat() : ["*"];
      grants.push({ actions, targets: resources.map((r) => resolver.target(r)), policy });
    }
  };
  const attached = (roles: Json) => [roles ?? []].flat().some((r: Json) => logicalIdIn(r) === roleId);

  for (const inline of [stack.resolve(role.policies) ?? []].flat()) addDocument(inline.PolicyDocument, role.node.path);
  for (const element of index.values()) {
    if (element instanceof iam.CfnPolicy && attached(stack.resolve(element.roles))) {
      addDocument(stack.resolve(element.policyDocument), element.node.path);
    }
    if (element instanceof iam.CfnManagedPolicy && attached(stack.resolve(element.roles))) {
      addDocument(stack.resolve(element.policyDocument), element.node.path);
    }
  }
  for (const arn of [stack.resolve(role.managedPolicyArns) ?? []].flat()) {
    const local = index.get(logicalIdIn(arn) ?? "");
    if (local instanceof iam.CfnManagedPolicy) {
      addDocument(stack.resolve(local.policyDocument), local.node.path);
      continue;
    }
    const name = /:iam::aws:policy\/(.+)$/.exec(resolver.render(arn))?.[1];
    if (name === undefined || !harmlessManagedPolicies.has(name)) {
      unknown.push(`its role carries managed policy ${resolver.render(arn)}, whose statements cannot be checked`);
    }
  }
  return { grants, unknown };
}

/** Whether an IAM action pattern (`sqs:Send*`, `*`) covers the action. Case-insensitive, as IAM. */
export function actionMatches(pattern: string, action: string): boolean {
  const source = pattern
    .split("")
    .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`, "i").test(action);
}

/** The IAM service prefix of a target kind (the actions that can touch it). */
export const serviceOf: Partial<Record<TargetKind, string>> = {
  table: "dynamodb",
  queue: "sqs",
  stream: "kinesis",
  topic: "sns",
  bucket: "s3",
  function: "lambda",
  key: "kms",
};

/** The actions of a grant that can apply to a target of this kind. */
export function actionsOn(grant: Grant, kind: TargetKind): string[] {
  const service = serviceOf[kind];
  if (kind === "any") return [...grant.actions];
  if (service === undefined) return [];
  return grant.actions.filter((a) => a === "*" || a.toLowerCase().startsWith(`${service}:`));
}

/** The resource a CloudFormation value (resolved) designates, as seen from `scope`'s stack. */
export function resolveTarget(scope: IConstruct, plan: AppPlan, value: unknown): Target & { readonly text: string } {
  const stack = Stack.of(scope);
  const resolver = new Resolver(stack, plan, elementsOf(stack));
  const resolved = stack.resolve(value);
  return { ...resolver.target(resolved), text: resolver.render(resolved) };
}

/** The owner of the stack a construct is in, from its `canon:owner` tag. */
export function stackOwner(scope: IConstruct): Owner | undefined {
  return parseOwnerTag(Stack.of(scope).tags.tagValues()[tagKeys.owner]);
}

/** Turns resolved CloudFormation values into ARN-like text and targets. */
class Resolver {
  private readonly stack: Stack;
  private readonly plan: AppPlan;
  private readonly index: ReadonlyMap<string, CfnElement>;
  /** Names of resources created in this stack, by kind. */
  private readonly localNames = new Map<TargetKind, Set<string>>();

  constructor(stack: Stack, plan: AppPlan, index: ReadonlyMap<string, CfnElement>) {
    this.stack = stack;
    this.plan = plan;
    this.index = index;
  }

  target(value: Json): Target {
    const text = this.render(value);
    if (text === "*") return { kind: "any", name: "*", owner: undefined, wildcard: true };
    const [kind, name] = classify(text);
    const wildcard = /[*?]/.test(name);
    return { kind, name, owner: wildcard ? undefined : this.ownerOf(kind, name), wildcard };
  }

  /** ARN-like text: pseudo parameters become placeholders, references the names they point at. */
  render(value: Json): string {
    if (typeof value === "string" || typeof value === "number") return String(value);
    if (value === null || typeof value !== "object") return "?";
    if (Array.isArray(value)) return value.map((v) => this.render(v)).join(",");
    if ("Ref" in value) return this.renderRef(String(value.Ref));
    if ("Fn::GetAtt" in value) {
      const [id, attribute] = [value["Fn::GetAtt"]].flat() as [string, string];
      return this.renderAttribute(id, attribute);
    }
    if ("Fn::Join" in value) {
      const [delimiter, parts] = value["Fn::Join"] as [string, Json[]];
      return parts.map((p) => this.render(p)).join(delimiter);
    }
    if ("Fn::Select" in value) {
      const [position, list] = value["Fn::Select"] as [number, Json];
      const items =
        list?.["Fn::Split"] !== undefined
          ? this.render(list["Fn::Split"][1]).split(list["Fn::Split"][0])
          : [list].flat().map((v: Json) => this.render(v));
      return items[Number(position)] ?? "?";
    }
    if ("Fn::Sub" in value) {
      const template = [value["Fn::Sub"]].flat()[0] as string;
      return template.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
        const [id, attribute] = name.split(".");
        return attribute === undefined ? this.renderRef(name) : this.renderAttribute(id ?? "", attribute);
      });
    }
    return "?";
  }

  private renderRef(id: string): string {
    const pseudo: Record<string, string> = {
      "AWS::Partition": "aws",
      "AWS::Region": "REGION",
      "AWS::AccountId": "ACCOUNT",
      "AWS::URLSuffix": "amazonaws.com",
      "AWS::StackName": this.stack.stackName,
    };
    if (pseudo[id] !== undefined) return pseudo[id];
    const element = this.index.get(id);
    if (element instanceof CfnParameter) return this.renderParameter(element);
    if (!(element instanceof CfnResource)) return "?";
    if (element.cfnResourceType === "AWS::Kinesis::StreamConsumer") return this.consumerArn(element);
    const name = this.physicalName(element);
    switch (element.cfnResourceType) {
      case "AWS::SQS::Queue":
        return `https://sqs.REGION.amazonaws.com/ACCOUNT/${name}`;
      case "AWS::SNS::Topic":
        return `arn:aws:sns:REGION:ACCOUNT:${name}`;
      default:
        return name;
    }
  }

  private renderAttribute(id: string, attribute: string): string {
    const element = this.index.get(id);
    if (!(element instanceof CfnResource)) return "?";
    if (element.cfnResourceType === "AWS::Kinesis::StreamConsumer") return this.consumerArn(element);
    const name = this.physicalName(element);
    const arns: Record<string, string> = {
      "AWS::DynamoDB::Table": `arn:aws:dynamodb:REGION:ACCOUNT:table/${name}`,
      "AWS::SQS::Queue": `arn:aws:sqs:REGION:ACCOUNT:${name}`,
      "AWS::SNS::Topic": `arn:aws:sns:REGION:ACCOUNT:${name}`,
      "AWS::Kinesis::Stream": `arn:aws:kinesis:REGION:ACCOUNT:stream/${name}`,
      "AWS::Lambda::Function": `arn:aws:lambda:REGION:ACCOUNT:function:${name}`,
      "AWS::KMS::Key": `arn:aws:kms:REGION:ACCOUNT:key/${name}`,
      "AWS::S3::Bucket": `arn:aws:s3:::${name}`,
      "AWS::Logs::LogGroup": `arn:aws:logs:REGION:ACCOUNT:log-group:${name}:*`,
    };
    const arn = arns[element.cfnResourceType] ?? `arn:aws:${element.cfnResourceType}:REGION:ACCOUNT:${name}`;
    if (element.cfnResourceType === "AWS::DynamoDB::Table" && attribute === "StreamArn") return `${arn}/stream/*`;
    if (element.cfnResourceType === "AWS::SQS::Queue" && attribute === "QueueName") return name;
    return arn;
  }

  /**
   * An enhanced fan-out consumer's ARN (`stream/<stream>/consumer/<name>:<creation time>`): it names
   * its stream, so reading through it counts as reading the stream, its mapping as a stream mapping.
   */
  private consumerArn(consumer: CfnResource): string {
    const properties = consumer as unknown as Record<string, unknown>;
    const stream = this.render(this.stack.resolve(properties.streamArn));
    const name = this.stack.resolve(properties.consumerName);
    return `${stream}/consumer/${typeof name === "string" ? name : "?"}:*`;
  }

  /** An SSM-backed parameter is the bus resource whose ARN (or bucket name) it holds (infra/names.ts). */
  private renderParameter(parameter: CfnParameter): string {
    const name = String(parameter.default ?? "");
    for (const stream of this.plan.streams) {
      if (name === busParameters.streamArn(this.plan.prefix, stream.bus))
        return `arn:aws:kinesis:REGION:ACCOUNT:stream/${stream.name}`;
    }
    for (const topic of this.plan.topics) {
      if (name === busParameters.topicArn(this.plan.prefix, topic.bus))
        return `arn:aws:sns:REGION:ACCOUNT:${topic.name}`;
    }
    // The bucket's name on AWS is made unique at deploy time; the plan's name stands for it.
    for (const bucket of this.plan.buckets) {
      if (name === busParameters.archiveBucket(this.plan.prefix, bucket.bus)) return bucket.name;
    }
    return `?parameter:${name}`;
  }

  /** A resource's physical name if it sets a literal one, else a placeholder naming its logical id. */
  private physicalName(element: CfnResource): string {
    const property: Record<string, [TargetKind, string]> = {
      "AWS::DynamoDB::Table": ["table", "tableName"],
      "AWS::SQS::Queue": ["queue", "queueName"],
      "AWS::SNS::Topic": ["topic", "topicName"],
      "AWS::Kinesis::Stream": ["stream", "name"],
      "AWS::Lambda::Function": ["function", "functionName"],
      "AWS::S3::Bucket": ["bucket", "bucketName"],
      "AWS::Logs::LogGroup": ["other", "logGroupName"],
    };
    const [kind, key] = property[element.cfnResourceType] ?? ["other", ""];
    const value = key ? this.stack.resolve((element as unknown as Record<string, unknown>)[key]) : undefined;
    const name = typeof value === "string" ? value : `local.${this.stack.resolve(element.logicalId)}`;
    const names = this.localNames.get(kind) ?? new Set<string>();
    names.add(name);
    this.localNames.set(kind, names);
    return name;
  }

  private ownerOf(kind: TargetKind, name: string): Owner | undefined {
    const planned =
      kind === "table"
        ? this.plan.tables.find((t) => t.name === name)?.owner
        : kind === "queue"
          ? this.plan.queues.find((q) => q.name === name || q.deadLetterQueueName === name)?.owner
          : kind === "stream"
            ? busOwner(this.plan.streams.find((s) => s.name === name)?.bus)
            : kind === "topic"
              ? busOwner(this.plan.topics.find((t) => t.name === name)?.bus)
              : kind === "bucket"
                ? this.plan.buckets.find((b) => b.name === name)?.owner
                : undefined;
    if (planned) return planned;
    // Created in this stack, outside the plan: it belongs to the stack's owner.
    if (this.localNames.get(kind)?.has(name)) return stackOwner(this.stack);
    return undefined;
  }
}

function busOwner(bus: string | undefined): Owner | undefined {
  return bus === undefined ? undefined : { kind: "bus", name: bus };
}

/** The kind and name an ARN-like text designates. */
function classify(text: string): [TargetKind, string] {
  const match = /^arn:[^:]*:([^:]*):[^:]*:[^:]*:(.*)$/.exec(text);
  if (!match) return ["other", text];
  const [, service, resource = ""] = match;
  const head = (prefix: string) => resource.slice(prefix.length).split("/")[0] ?? "";
  switch (service) {
    case "dynamodb":
      return resource.startsWith("table/") ? ["table", head("table/")] : ["other", text];
    case "sqs":
      return ["queue", resource];
    case "kinesis":
      return resource.startsWith("stream/") ? ["stream", head("stream/")] : ["other", text];
    case "sns":
      return ["topic", resource];
    case "s3":
      // arn:aws:s3:::bucket, arn:aws:s3:::bucket/key-pattern
      return resource === "" ? ["other", text] : ["bucket", resource.split("/")[0] ?? ""];
    case "lambda":
      return resource.startsWith("function:") ? ["function", resource.split(":")[1] ?? ""] : ["other", text];
    case "kms":
      return ["key", resource];
    case "*":
      return ["any", text];
    default:
      return ["other", text];
  }
}

/** The logical id a `Ref` or `Fn::GetAtt` points at. */
function logicalIdIn(value: Json): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  if (typeof value.Ref === "string") return value.Ref;
  const getAtt = value["Fn::GetAtt"];
  return Array.isArray(getAtt) ? getAtt[0] : undefined;
}

/** Every CloudFormation element of a stack by logical id. */
function elementsOf(stack: Stack): Map<string, CfnElement> {
  const index = new Map<string, CfnElement>();
  for (const child of stack.node.findAll()) {
    if (CfnElement.isCfnElement(child) && Stack.of(child) === stack) index.set(stack.resolve(child.logicalId), child);
  }
  return index;
}
