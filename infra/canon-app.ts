/**
 * Every stack of a plan: one per bus, one per service, one for the API, one for the
 * operator console's IAM access, and one for the app's alarm topic, with the laws (infra/laws.ts)
 * and cdk-nag's AwsSolutions checks applied to all of them. Stacks share no CloudFormation
 * exports; the only ordering is "a bus before its services, and before the console access",
 * since those read the bus's SSM parameters at deploy time. Nothing depends on a service stack,
 * nor on the alarms stack (the alarms name its topic by ARN, which CloudWatch accepts before the
 * topic exists): `cdk destroy` of a stack also destroys the stacks that depend on it, so
 * destroying one service, or the alarm topic, takes nothing else with it.
 */
import { type App, type Environment, Tags, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import type { AppPlan, Owner } from "../shared/plan.ts";
import { AlarmsStack, alarmEmailsFromContext } from "./alarms-stack.ts";
import { type ApiAuth, ApiStack } from "./api-stack.ts";
import { type ArchiveOptions, archiveOptionsFromContext } from "./archive.ts";
import { BusStack } from "./bus-stack.ts";
import { ConsoleAccessStack, consoleOperatorsFromContext } from "./console-access.ts";
import { applyLaws } from "./laws.ts";
import type { MonitoringOptions } from "./monitoring.ts";
import { sameOwner, stackNames, tagKeys } from "./names.ts";
import type { OwnedResourceOptions } from "./resources.ts";
import { ServiceStack } from "./service-stack.ts";

export interface CanonStacksProps extends OwnedResourceOptions, MonitoringOptions {
  /** @default environment-agnostic (region and account resolved at deploy time) */
  readonly env?: Environment;
  /** @default { kind: "cognito" } */
  readonly apiAuth?: ApiAuth;
  /** Object Lock and cross-region replication of every bus's archive. @default neither */
  readonly archive?: ArchiveOptions;
  /** The first day the archives' SQL tables project (yyyy-MM-dd). @default "2026-01-01" */
  readonly archiveSince?: string;
  /** How many shard ids each archive's SQL table projects, for a stream resharded past the default. @default see `shardIdsFor` */
  readonly archiveShardIds?: number;
  /** Principal ARNs that may assume the operator console role. @default none: the managed policy only */
  readonly consoleOperators?: readonly string[];
  /** E-mail addresses subscribed to the app's alarm topic. @default none */
  readonly alarmEmails?: readonly string[];
  /** The HTTP API's steady-state requests per second (its stage throttle). @default 100 */
  readonly apiRateLimit?: number;
  /** The HTTP API's burst. @default 200 */
  readonly apiBurstLimit?: number;
}

export interface CanonStacks {
  readonly buses: ReadonlyMap<string, BusStack>;
  readonly services: ReadonlyMap<string, ServiceStack>;
  readonly api: ApiStack;
  /** The operator console's managed policy (and role): infra/console-access.ts. */
  readonly consoleAccess: ConsoleAccessStack;
  /** The app's alarm topic, which every alarm notifies: infra/alarms-stack.ts. */
  readonly alarms: AlarmsStack;
}

/** The names of the services in a plan, in declaration order. */
export function plannedServices(plan: AppPlan): string[] {
  const names = plan.functions.flatMap((fn) => (fn.owner.kind === "service" ? [fn.owner.name] : []));
  return [...new Set(names)];
}

/** The buses whose stream, topic or archive the owner's functions or subscriptions use. */
function busesUsedBy(plan: AppPlan, owner: Owner): Set<string> {
  const used = new Set<string>();
  for (const subscription of plan.subscriptions) {
    const queue = plan.queues.find((q) => q.id === subscription.queueId);
    if (queue && sameOwner(queue.owner, owner)) used.add(subscription.bus);
  }
  for (const fn of plan.functions) {
    if (!sameOwner(fn.owner, owner)) continue;
    for (const ref of Object.values(fn.env)) {
      if (ref.kind === "stream" || ref.kind === "topic" || ref.kind === "bucket") used.add(ref.bus);
    }
  }
  return used;
}

/**
 * The checks every Canon app runs at synth: the laws, as an aspect, and cdk-nag's AwsSolutions
 * pack, as a validation plugin. Either one fails synthesis on a finding.
 */
export function applyCanonChecks(app: App, plan: AppPlan): void {
  applyLaws(app, plan);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

export function addCanonStacks(app: App, plan: AppPlan, props: CanonStacksProps = {}): CanonStacks {
  Tags.of(app).add(tagKeys.app, plan.prefix);
  applyCanonChecks(app, plan);
  const {
    apiAuth,
    apiRateLimit,
    apiBurstLimit,
    archive,
    archiveSince,
    archiveShardIds,
    consoleOperators,
    alarmEmails,
    ...common
  } = props;
  const alarms = new AlarmsStack(app, stackNames.alarms(plan.prefix), {
    env: common.env,
    prefix: plan.prefix,
    emails: alarmEmails,
    alarmTopicArn: common.alarmTopicArn,
  });
  const buses = new Map<string, BusStack>();
  for (const { bus } of plan.streams) {
    buses.set(
      bus,
      new BusStack(app, stackNames.bus(plan.prefix, bus), {
        ...common,
        plan,
        bus,
        archive,
        archiveSince,
        archiveShardIds,
      }),
    );
  }
  const services = new Map<string, ServiceStack>();
  for (const service of plannedServices(plan)) {
    const stack = new ServiceStack(app, stackNames.service(plan.prefix, service), { ...common, plan, service });
    // Deploy order only, not a reference: the service resolves its bus's SSM parameters.
    for (const bus of busesUsedBy(plan, { kind: "service", name: service })) {
      const busStack = buses.get(bus);
      if (busStack) stack.addStackDependency(busStack, "reads the bus's SSM parameters");
    }
    services.set(service, stack);
  }
  const api = new ApiStack(app, stackNames.api(plan.prefix), {
    ...common,
    plan,
    auth: apiAuth,
    rateLimit: apiRateLimit,
    burstLimit: apiBurstLimit,
  });
  const consoleAccess = new ConsoleAccessStack(app, stackNames.consoleAccess(plan.prefix), {
    env: common.env,
    plan,
    operators: consoleOperators,
  });
  // Deploy order only, as for a service: the policy resolves each bus's archive-bucket SSM parameter.
  for (const busStack of buses.values()) {
    consoleAccess.addStackDependency(busStack, "reads the bus's archive-bucket SSM parameter");
  }
  return { buses, services, api, consoleAccess, alarms };
}

/** Options from CDK context (`cdk deploy -c key=value` or cdk.json), so a deploy needs no code change. */
export function stacksPropsFromContext(
  scope: IConstruct,
): Pick<
  CanonStacksProps,
  | "alarmTopicArn"
  | "alarmEmails"
  | "apiRateLimit"
  | "apiBurstLimit"
  | "archive"
  | "archiveSince"
  | "archiveShardIds"
  | "consoleOperators"
> {
  const alarmTopicArn = scope.node.tryGetContext("canon:alarmTopicArn");
  const archiveSince = scope.node.tryGetContext("canon:archiveSince");
  if (archiveSince !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(String(archiveSince))) {
    throw new Error(`canon:archiveSince must be a day (yyyy-MM-dd), not "${archiveSince}"`);
  }
  const archiveShardIds = scope.node.tryGetContext("canon:archiveShardIds");
  if (archiveShardIds !== undefined && !/^\d+$/.test(String(archiveShardIds))) {
    throw new Error(`canon:archiveShardIds must be a number of shard ids, not "${archiveShardIds}"`);
  }
  // Requests a second: the API's throttle is the first ceiling a deployment meets (docs/aws-capacity.md).
  const limit = (key: string) => {
    const value = scope.node.tryGetContext(key);
    if (value === undefined) return undefined;
    if (!/^[1-9]\d*$/.test(String(value)))
      throw new Error(`${key} must be a whole number of requests a second, not "${value}"`);
    return Number(value);
  };
  const apiRateLimit = limit("canon:apiRateLimit");
  const apiBurstLimit = limit("canon:apiBurstLimit");
  const consoleOperators = consoleOperatorsFromContext(scope);
  const alarmEmails = alarmEmailsFromContext(scope);
  return {
    ...(typeof alarmTopicArn === "string" && alarmTopicArn !== "" && { alarmTopicArn }),
    ...(alarmEmails !== undefined && { alarmEmails }),
    ...(apiRateLimit !== undefined && { apiRateLimit }),
    ...(apiBurstLimit !== undefined && { apiBurstLimit }),
    ...(archiveSince !== undefined && { archiveSince: String(archiveSince) }),
    ...(archiveShardIds !== undefined && { archiveShardIds: Number(archiveShardIds) }),
    archive: archiveOptionsFromContext(scope),
    ...(consoleOperators !== undefined && { consoleOperators }),
  };
}
