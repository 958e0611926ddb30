/**
 * Finding a deployed app's resources from its plan, with the operator's credentials: the
 * streams and tables carry the plan's names; queue URLs come from `GetQueueUrl`; each bus's
 * archive bucket (named by CloudFormation) from the SSM parameter its bus stack publishes;
 * functions (named by CloudFormation) from their `canon:app` and `canon:function` tags; warm-up
 * state machines by their planned names. What is not deployed (yet) is listed in `missing`.
 */

import { paginateGetResources } from "@aws-sdk/client-resource-groups-tagging-api";
import { paginateListStateMachines } from "@aws-sdk/client-sfn";
import { GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { GetParameterCommand } from "@aws-sdk/client-ssm";
import { sfnClient, sqsClient, ssmClient, taggingClient } from "../aws/clients.ts";
import { busParameters, tagKeys, warmUpName } from "../aws/deployed-names.ts";
import { isAwsError } from "../aws/errors.ts";
import type { ProvisionedResources } from "../local-cloud/provision.ts";
import type { AppPlan } from "../plan.ts";

export interface DeployedFunction {
  readonly id: string;
  readonly arn: string;
  /** The physical name CloudFormation gave it (CloudWatch's `FunctionName` dimension). */
  readonly name: string;
}

export interface DeployedApp {
  readonly region: string;
  /** Names and URLs, in the shape the local cloud's provisioning gives (streams, queues, tables, buckets). */
  readonly resources: ProvisionedResources;
  /** Planned function id → the deployed function. */
  readonly functions: ReadonlyMap<string, DeployedFunction>;
  /** Planned consumer function id → its warm-up state machine's ARN. */
  readonly warmUps: ReadonlyMap<string, string>;
  /** What the plan has and the account does not (yet): `queue accounts-balances`, `function …`. */
  readonly missing: readonly string[];
}

/** An error that means "not there", as opposed to "not allowed" or "unreachable". */
function isNotFound(error: unknown): boolean {
  return notFoundNames.some((name) => isAwsError(error, name));
}

const notFoundNames = [
  "QueueDoesNotExist",
  "AWS.SimpleQueueService.NonExistentQueue",
  "ParameterNotFound",
  "ResourceNotFoundException",
];

async function orMissing<T>(what: string, missing: string[], read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (!isNotFound(error)) throw error;
    missing.push(what);
    return undefined;
  }
}

const queueUrl = async (name: string) => {
  const { QueueUrl } = await sqsClient().send(new GetQueueUrlCommand({ QueueName: name }));
  if (QueueUrl === undefined) throw Object.assign(new Error(`no URL for ${name}`), { name: "QueueDoesNotExist" });
  return QueueUrl;
};

/** The functions tagged with the app's prefix, by their `canon:function` tag. */
async function taggedFunctions(prefix: string): Promise<Map<string, DeployedFunction>> {
  const found = new Map<string, DeployedFunction>();
  const pages = paginateGetResources(
    { client: taggingClient() },
    { TagFilters: [{ Key: tagKeys.app, Values: [prefix] }], ResourceTypeFilters: ["lambda:function"] },
  );
  for await (const page of pages) {
    for (const resource of page.ResourceTagMappingList ?? []) {
      const id = resource.Tags?.find((tag) => tag.Key === tagKeys.function)?.Value;
      const arn = resource.ResourceARN;
      if (id === undefined || arn === undefined) continue;
      // arn:aws:lambda:<region>:<account>:function:<name>
      found.set(id, { id, arn, name: arn.split(":")[6] ?? arn });
    }
  }
  return found;
}

async function stateMachines(): Promise<Map<string, string>> {
  const byName = new Map<string, string>();
  for await (const page of paginateListStateMachines({ client: sfnClient() }, {})) {
    for (const machine of page.stateMachines ?? []) {
      if (machine.name && machine.stateMachineArn) byName.set(machine.name, machine.stateMachineArn);
    }
  }
  return byName;
}

/** Looks the plan's resources up in the account and region the SDK is configured for. */
export async function discoverDeployedApp(plan: AppPlan, region: string): Promise<DeployedApp> {
  const missing: string[] = [];
  const queueUrls = new Map<string, string>();
  const deadLetterQueueUrls = new Map<string, string>();
  const archiveBuckets = new Map<string, string>();
  const warmUpsWanted = plan.functions.filter((fn) => fn.startsDetached === true);

  const [functions, machines] = await Promise.all([
    taggedFunctions(plan.prefix),
    warmUpsWanted.length === 0 ? Promise.resolve(new Map<string, string>()) : stateMachines(),
    ...plan.queues.map(async (queue) => {
      const [url, dlq] = await Promise.all([
        orMissing(`queue ${queue.name}`, missing, () => queueUrl(queue.name)),
        orMissing(`queue ${queue.deadLetterQueueName}`, missing, () => queueUrl(queue.deadLetterQueueName)),
      ]);
      if (url !== undefined) queueUrls.set(queue.id, url);
      if (dlq !== undefined) deadLetterQueueUrls.set(queue.id, dlq);
    }),
    ...plan.buckets.map(async (bucket) => {
      const parameter = busParameters.archiveBucket(plan.prefix, bucket.bus);
      const found = await orMissing(`archive bucket of ${bucket.bus} (SSM ${parameter})`, missing, async () => {
        const { Parameter } = await ssmClient().send(new GetParameterCommand({ Name: parameter }));
        return Parameter?.Value;
      });
      if (found !== undefined) archiveBuckets.set(bucket.bus, found);
    }),
  ]);

  for (const fn of plan.functions) {
    if (!functions.has(fn.id)) missing.push(`function ${fn.id}`);
  }
  const warmUps = new Map<string, string>();
  for (const fn of warmUpsWanted) {
    const name = warmUpName(plan.prefix, fn.id);
    const arn = machines.get(name);
    if (arn === undefined) missing.push(`state machine ${name}`);
    else warmUps.set(fn.id, arn);
  }

  return {
    region,
    resources: {
      streamNames: new Map(plan.streams.map((s) => [s.bus, s.name])),
      streamArns: new Map(),
      topicArns: new Map(),
      queueUrls,
      deadLetterQueueUrls,
      tableNames: new Map(plan.tables.map((t) => [t.id, t.name])),
      archiveBuckets,
    },
    functions,
    warmUps,
    missing: missing.sort(),
  };
}
