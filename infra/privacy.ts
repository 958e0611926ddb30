/**
 * Personal data on AWS (docs/privacy.md): one stack per app holding the KMS key that wraps every
 * subject's data key (rotation on), the subject keys table (point-in-time recovery, KMS
 * encryption, retained) and the operator's erase route — an HTTP API of its own with IAM
 * authorisation, so only a principal allowed `execute-api:Invoke` on it can erase, and the
 * erasure records who. `protectPersonalData` grants each function what its role needs, by the
 * key's alias and the table's name (no CloudFormation export between stacks):
 *
 * - the API (its JSON and rpc functions) seals commands, a command handler seals commits and
 *   opens commands: kms:GenerateDataKey (a new subject) and kms:Decrypt (a known one),
 *   dynamodb:GetItem and PutItem on the keys table;
 * - projections (not a service's state projection, which keeps personal data sealed), reactors
 *   and replayers open: kms:Decrypt and dynamodb:GetItem;
 * - the relay and the archiver never see plaintext and get nothing.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Tags, Validations } from "aws-cdk-lib";
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway";
import * as apigw from "aws-cdk-lib/aws-apigatewayv2";
import { HttpIamAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import * as ssm from "aws-cdk-lib/aws-ssm";
import type { Construct } from "constructs";
import { busParameters } from "../shared/aws/deployed-names.ts";
import type { AppPlan } from "../shared/plan.ts";
import { defaultKeyCacheTtlMs, privacyEnv, subjectKeysTableName } from "../shared/privacy/env.ts";
import { eraseTargetsEnv } from "../shared/privacy/erase-handler.ts";
import { deployedNodeOptions } from "./bundling.ts";
import type { CanonStacks } from "./canon-app.ts";
import type { CanonFunction } from "./canon-function.ts";
import { lambdaBundling, repoRoot } from "./canon-function.ts";
import { nagResource } from "./nag.ts";
import { pascal, tagKeys } from "./names.ts";

/** The KMS alias every function names the subject keys' key by. */
export const subjectKeysAlias = (prefix: string): string => `alias/${prefix}-subject-keys`;

/** The keys table's point-in-time recovery window: how long an erasure can still be undone by a restore. */
export const recoveryDays = 7;

export interface PrivacyStackProps extends StackProps {
  readonly plan: AppPlan;
  /** The buses a SubjectErased goes to: those the services write to. */
  readonly buses: readonly string[];
  /** @default RemovalPolicy.RETAIN: a deleted table or key would erase every subject at once */
  readonly removalPolicy?: RemovalPolicy;
  /** The functions' key cache TTL, which the erase waits out (under API Gateway's 30 s integration limit). @default 20 s */
  readonly keyCacheTtl?: Duration;
}

export class PrivacyStack extends Stack {
  readonly key: kms.Key;
  readonly table: dynamodb.Table;
  readonly eraseFunction: nodejs.NodejsFunction;
  readonly adminApi: apigw.HttpApi;
  readonly keyCacheTtl: Duration;

  constructor(scope: Construct, id: string, props: PrivacyStackProps) {
    super(scope, id, props);
    const { plan } = props;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.keyCacheTtl = props.keyCacheTtl ?? Duration.millis(defaultKeyCacheTtlMs);
    Tags.of(this).add(tagKeys.owner, "api");

    this.key = new kms.Key(this, "SubjectKeysKey", {
      alias: subjectKeysAlias(plan.prefix),
      description: `Canon ${plan.prefix}: wraps every subject's data key (personal data, docs/privacy.md)`,
      enableKeyRotation: true,
      removalPolicy,
    });
    this.table = new dynamodb.Table(this, "SubjectKeysTable", {
      tableName: subjectKeysTableName(plan.prefix),
      partitionKey: { name: "id", type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      // What it holds is wrapped by the key above already; the table's own encryption is the
      // one every Canon table has (so no reader needs a second key grant).
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // A restore within the window brings erased keys back: an erasure is final once it has
      // passed, so the window is kept short (docs/privacy.md).
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true, recoveryPeriodInDays: recoveryDays },
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });

    this.eraseFunction = this.createEraseFunction(plan, props.buses);
    this.adminApi = this.createAdminApi(plan);
  }

  /** The erase route's function: deletes a key (UpdateItem), then appends SubjectErased to each bus. */
  private createEraseFunction(plan: AppPlan, buses: readonly string[]): nodejs.NodejsFunction {
    const logGroup = new logs.LogGroup(this, "EraseLogs", {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, "EraseRole", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `Canon ${plan.prefix} subject erasure`,
    });
    logGroup.grantWrite(role);
    const targets = buses.map((bus) => {
      const stream = plan.streams.find((s) => s.bus === bus);
      if (stream === undefined) throw new Error(`the plan has no bus "${bus}"`);
      return {
        bus,
        streamName: stream.name,
        streamArn: ssm.StringParameter.valueForStringParameter(this, busParameters.streamArn(plan.prefix, bus)),
        archiveBucket: ssm.StringParameter.valueForStringParameter(this, busParameters.archiveBucket(plan.prefix, bus)),
      };
    });
    const fn = new nodejs.NodejsFunction(this, "Erase", {
      entry: `${repoRoot}shared/privacy/erase-handler.ts`,
      projectRoot: repoRoot,
      depsLockFilePath: `${repoRoot}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      // It waits out the functions' key cache before announcing the erasure.
      timeout: this.keyCacheTtl.plus(Duration.seconds(30)),
      tracing: lambda.Tracing.ACTIVE,
      role,
      logGroup,
      environment: {
        NODE_OPTIONS: deployedNodeOptions,
        [privacyEnv.keysTable]: this.table.tableName,
        [privacyEnv.keyCacheTtlMs]: String(this.keyCacheTtl.toMilliseconds()),
        [eraseTargetsEnv]: this.toJsonString(
          targets.map(({ bus, streamName, archiveBucket }) => ({ bus, streamName, archiveBucket })),
        ),
      },
      bundling: lambdaBundling,
    });
    // The erasure record: written, never deleted (REMOVE of the key attributes is an UpdateItem).
    this.table.grant(fn, "dynamodb:UpdateItem");
    for (const target of targets) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ["kinesis:PutRecords", "kinesis:PutRecord"],
          resources: [target.streamArn],
        }),
      );
    }
    Tags.of(fn).add(tagKeys.function, eraseFunctionId);
    Tags.of(fn).add(tagKeys.role, "api");
    Tags.of(fn).add(tagKeys.owner, "api");
    Validations.of(role).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason: "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource-level permission; tracing is on.",
    });
    return fn;
  }

  /** `POST /admin/subjects/{subject}/erase`, IAM-authorised, access-logged. */
  private createAdminApi(plan: AppPlan): apigw.HttpApi {
    const api = new apigw.HttpApi(this, "AdminApi", {
      apiName: `${plan.prefix}-admin`,
      description: "Operator-only routes (IAM): erasing a subject's personal data",
      createDefaultStage: false,
    });
    api.addRoutes({
      path: "/admin/subjects/{subject}/erase",
      methods: [apigw.HttpMethod.POST],
      integration: new HttpLambdaIntegration("EraseIntegration", this.eraseFunction),
      authorizer: new HttpIamAuthorizer(),
    });
    const accessLogs = new logs.LogGroup(this, "AdminAccessLogs", {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    api.addStage("DefaultStage", {
      stageName: "$default",
      autoDeploy: true,
      throttle: { rateLimit: 5, burstLimit: 10 },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: "$context.requestId",
            requestTime: "$context.requestTime",
            routeKey: "$context.routeKey",
            status: "$context.status",
            caller: "$context.identity.userArn",
          }),
        ),
      },
    });
    new CfnOutput(this, "AdminApiUrl", {
      value: api.apiEndpoint,
      description: "POST /admin/subjects/{subject}/erase here, signed with SigV4 (execute-api)",
    });
    new ssm.StringParameter(this, "AdminApiUrlParameter", {
      parameterName: adminApiUrlParameter(plan.prefix),
      stringValue: api.apiEndpoint,
      description: "The erase route's base URL (IAM-authorised)",
    });
    return api;
  }
}

/** The SSM parameter naming the admin API's base URL (an operator's tools find the erase route by it). */
export const adminApiUrlParameter = (prefix: string): string => `/canon/${prefix}/privacy/admin-url`;

/**
 * The actions on the subject keys table a function of this role may take (infra/laws.ts holds
 * every grant to it to these): sealing reads and creates keys, opening reads them, the erase
 * route updates them; nothing deletes an erasure's record.
 */
export function subjectKeyActions(role: string, functionId: string | undefined): readonly string[] {
  if (role === "command-handler") return ["dynamodb:GetItem", "dynamodb:PutItem"];
  if (role === "api" && functionId !== eraseFunctionId) return ["dynamodb:GetItem", "dynamodb:PutItem"];
  if (role === "projection" && functionId?.endsWith("-state") !== true) return ["dynamodb:GetItem"];
  if (role === "reactor" || role === "replayer") return ["dynamodb:GetItem"];
  if (role === "api" && functionId === eraseFunctionId) return ["dynamodb:UpdateItem"];
  return [];
}

const eraseFunctionId = "subject-erase";

/** What each role of function may do with the subject keys: seal, open, or nothing. */
function personalDataAccess(fn: CanonFunction): "seal" | "open" | undefined {
  const { role, id } = fn.planned;
  if (role === "command-handler" || role === "api") return "seal";
  if (role === "projection") return id.endsWith("-state") ? undefined : "open";
  if (role === "reactor" || role === "replayer") return "open";
  return undefined;
}

/**
 * Gives every function that seals or opens personal data the keys table, the key (by alias) and
 * the cache TTL, with the grants its role needs and no more.
 */
export function protectPersonalData(
  plan: AppPlan,
  functions: Iterable<CanonFunction>,
  keyCacheTtl = Duration.millis(defaultKeyCacheTtlMs),
): void {
  for (const fn of functions) {
    const access = personalDataAccess(fn);
    if (access === undefined) continue;
    const scope = fn.function;
    const alias = subjectKeysAlias(plan.prefix);
    scope.addEnvironment(privacyEnv.keysTable, subjectKeysTableName(plan.prefix));
    scope.addEnvironment(privacyEnv.kmsKeyId, alias);
    scope.addEnvironment(privacyEnv.keyCacheTtlMs, String(keyCacheTtl.toMilliseconds()));
    const table = dynamodb.Table.fromTableName(scope, "SubjectKeys", subjectKeysTableName(plan.prefix));
    table.grant(scope, ...(access === "seal" ? ["dynamodb:GetItem", "dynamodb:PutItem"] : ["dynamodb:GetItem"]));
    const key = kms.Alias.fromAliasName(scope, `${pascal(plan.prefix)}SubjectKeysAlias`, alias);
    key.grant(scope, ...(access === "seal" ? ["kms:GenerateDataKey", "kms:Decrypt"] : ["kms:Decrypt"]));
    Validations.of(scope).acknowledge({
      id: `AwsSolutions-IAM5[${nagResource(scope, Stack.of(scope).formatArn({ service: "kms", resource: "key", resourceName: "*" }))}]`,
      reason:
        "The subject keys' KMS key, granted by alias: the statement is scoped by the kms:ResourceAliases " +
        "condition to that one alias, so no stack needs a reference to the privacy stack.",
    });
  }
}

/**
 * The privacy stack of an app, and every bus and service function wired to it (infra/app.ts).
 * Services deploy after it (the key and table exist before a function seals or opens).
 */
export function addPrivacy(
  app: Construct,
  plan: AppPlan,
  stacks: CanonStacks,
  props: Omit<PrivacyStackProps, "plan" | "buses"> = {},
): PrivacyStack {
  const serviceBuses = new Set(
    plan.functions.flatMap((fn) =>
      fn.role === "command-handler"
        ? Object.values(fn.env).flatMap((ref) => (ref.kind === "stream" ? [ref.bus] : []))
        : [],
    ),
  );
  const privacy = new PrivacyStack(app, `${pascal(plan.prefix)}-Privacy`, {
    ...props,
    plan,
    buses: [...serviceBuses],
  });
  for (const bus of serviceBuses) {
    const busStack = stacks.buses.get(bus);
    if (busStack) privacy.addStackDependency(busStack, "reads the bus's SSM parameters");
  }
  for (const stack of [...stacks.services.values(), stacks.api]) {
    stack.addStackDependency(privacy, "its functions seal and open personal data with the subject keys");
    protectPersonalData(plan, stack.functions.values(), privacy.keyCacheTtl);
  }
  return privacy;
}
