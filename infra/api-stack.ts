/**
 * The API: the client's one entry point. Its function sits behind an HTTP API that
 * authenticates every route (a JWT authorizer by default, so a request without a valid
 * token gets 401 before reaching Lambda), throttles, and writes access logs. It sends
 * commands to the services' queues and reads their query tables, all found by physical name
 * from the plan: it needs no service stack to synthesize or deploy.
 */
import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Tags, Validations } from "aws-cdk-lib";
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway";
import * as apigw from "aws-cdk-lib/aws-apigatewayv2";
import { HttpIamAuthorizer, HttpJwtAuthorizer, HttpUserPoolAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import * as cognito from "aws-cdk-lib/aws-cognito";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct, type IConstruct } from "constructs";
import type { AppPlan, Owner } from "../shared/plan.ts";
import { addOwnedFunctions, type CanonFunction } from "./canon-function.ts";
import { type Monitoring, type MonitoringOptions, monitoringFor } from "./monitoring.ts";
import { ownerSlug, ownerTag, tagKeys } from "./names.ts";
import { type OwnedResourceOptions, PlanResources } from "./resources.ts";

/**
 * How callers authenticate:
 * - `cognito`: a user pool in this stack issues OAuth2 access tokens to machine clients
 *   (client credentials); unauthenticated requests get 401;
 * - `jwt`: tokens from your own OpenID Connect provider (issuer and audience); 401 as above;
 * - `iam`: SigV4-signed requests; note that API Gateway answers an unsigned request 403.
 */
export type ApiAuth =
  | { readonly kind: "cognito" }
  | { readonly kind: "jwt"; readonly issuer: string; readonly audience: readonly string[] }
  | { readonly kind: "iam" };

export interface ApiStackProps extends StackProps, OwnedResourceOptions, MonitoringOptions {
  readonly plan: AppPlan;
  /** @default { kind: "cognito" } */
  readonly auth?: ApiAuth;
  /** Steady-state requests per second across the API. @default 100 */
  readonly rateLimit?: number;
  /** @default 200 */
  readonly burstLimit?: number;
}

export class ApiStack extends Stack {
  readonly httpApi: apigw.HttpApi;
  readonly resources: PlanResources;
  readonly functions: ReadonlyMap<string, CanonFunction>;
  readonly monitoring: Monitoring;
  /** The user pool when `auth` is `cognito`. */
  readonly userPool?: cognito.UserPool;

  constructor(scope: Construct, id: string, props: ApiStackProps) {
    super(scope, id, props);
    const { plan } = props;
    const owner: Owner = { kind: "api" };
    Tags.of(this).add(tagKeys.owner, ownerTag(owner));
    this.resources = new PlanResources(this, plan);
    this.resources.addOwned(owner, props);

    this.functions = addOwnedFunctions(this, this.resources, owner);
    const http = [...this.functions.values()].filter((fn) => fn.planned.source.kind === "http");
    const routeOf = (fn: CanonFunction) => (fn.planned.source.kind === "http" ? fn.planned.source.route : undefined);
    const handler = http.find((fn) => routeOf(fn) === undefined);
    if (!handler) throw new Error("the plan has no function behind the HTTP API");

    const auth = props.auth ?? { kind: "cognito" };
    let authorizer: apigw.IHttpRouteAuthorizer;
    let scopes: string[] | undefined;
    if (auth.kind === "cognito") {
      const machine = new MachineClients(this, "Auth", {
        prefix: plan.prefix,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
      this.userPool = machine.userPool;
      authorizer = new HttpUserPoolAuthorizer("Jwt", machine.userPool, { userPoolClients: [machine.client] });
      scopes = [machine.scope];
      new CfnOutput(this, "TokenUrl", {
        value: machine.tokenUrl,
        description: "POST grant_type=client_credentials here, with the machine client's id and secret",
      });
      new CfnOutput(this, "MachineClientId", { value: machine.client.userPoolClientId });
      new CfnOutput(this, "UserPoolId", { value: machine.userPool.userPoolId });
    } else if (auth.kind === "jwt") {
      authorizer = new HttpJwtAuthorizer("Jwt", auth.issuer, { jwtAudience: [...auth.audience] });
    } else {
      authorizer = new HttpIamAuthorizer();
    }

    this.httpApi = new apigw.HttpApi(this, "HttpApi", {
      apiName: `${plan.prefix}-api`,
      defaultIntegration: new HttpLambdaIntegration("Handler", handler.function),
      defaultAuthorizer: authorizer,
      defaultAuthorizationScopes: scopes,
      createDefaultStage: false,
    });
    // A function serving one route of its own (the rpc function's `POST /{service}/{method}`),
    // behind the same authorizer.
    for (const fn of http) {
      const route = routeOf(fn);
      if (route === undefined) continue;
      const [method, path] = route.split(" ") as [string, string];
      this.httpApi.addRoutes({
        path,
        methods: [method as apigw.HttpMethod],
        integration: new HttpLambdaIntegration(`${fn.planned.id}-integration`, fn.function),
      });
    }
    const accessLogs = new logs.LogGroup(this, "AccessLogs", {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.httpApi.addStage("DefaultStage", {
      stageName: "$default",
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit ?? 100, burstLimit: props.burstLimit ?? 200 },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(accessLogFields)),
      },
    });
    new CfnOutput(this, "ApiUrl", { value: this.httpApi.apiEndpoint, description: "Base URL of the HTTP API" });

    this.monitoring = monitoringFor(this, plan.prefix, ownerSlug(owner), props);
    this.monitoring.addServerErrors(
      "http",
      this.httpApi.metricServerError({ period: Duration.minutes(5), statistic: "Sum" }),
    );
    this.monitoring.addFunctions(new Map([...this.functions].map(([fid, fn]) => [fid, fn.function])));
  }
}

/** One JSON object per request; HTTP API context variables only. */
const accessLogFields = {
  requestId: "$context.requestId",
  ip: "$context.identity.sourceIp",
  requestTime: "$context.requestTime",
  method: "$context.httpMethod",
  path: "$context.path",
  routeKey: "$context.routeKey",
  status: "$context.status",
  protocol: "$context.protocol",
  responseLength: "$context.responseLength",
  latency: "$context.responseLatency",
  integrationLatency: "$context.integrationLatency",
  integrationError: "$context.integrationErrorMessage",
  authorizerError: "$context.authorizer.error",
  clientId: "$context.authorizer.claims.client_id",
};

interface MachineClientsProps {
  readonly prefix: string;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * A Cognito user pool that issues access tokens to machine clients (OAuth2 client
 * credentials) for one scope, `{prefix}/invoke`, with a hosted token endpoint. People are not
 * signed up here: add an app client with a user flow, or use your own identity provider
 * (`auth: { kind: "jwt" }`).
 */
class MachineClients extends Construct {
  readonly userPool: cognito.UserPool;
  readonly client: cognito.UserPoolClient;
  /** The OAuth scope every route requires. */
  readonly scope: string;
  /** Where a machine client trades its id and secret for an access token. */
  readonly tokenUrl: string;

  constructor(scope: Construct, id: string, props: MachineClientsProps) {
    super(scope, id);
    this.userPool = new cognito.UserPool(this, "UserPool", {
      userPoolName: `${props.prefix}-api`,
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: {
        minLength: 14,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.ESSENTIALS,
      deletionProtection: props.removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy: props.removalPolicy,
    });
    Validations.of(this.userPool).acknowledge({
      id: "AwsSolutions-COG8",
      reason:
        "Threat protection (the Plus feature plan, billed per monthly active user) guards password sign-in; " +
        "this pool only issues tokens to machine clients by client credentials, where it does not apply.",
    });
    const invoke = new cognito.ResourceServerScope({ scopeName: "invoke", scopeDescription: "Call the Canon API" });
    const server = this.userPool.addResourceServer("ResourceServer", {
      identifier: props.prefix,
      scopes: [invoke],
    });
    this.client = this.userPool.addClient("MachineClient", {
      userPoolClientName: `${props.prefix}-machine`,
      generateSecret: true,
      authFlows: {},
      oAuth: {
        flows: { clientCredentials: true },
        scopes: [cognito.OAuthScope.resourceServer(server, invoke)],
      },
      accessTokenValidity: Duration.hours(1),
    });
    const domain = this.userPool.addDomain("Domain", {
      // Cognito domain prefixes are global per region: the account id keeps them apart.
      cognitoDomain: { domainPrefix: `${props.prefix}-${Aws.ACCOUNT_ID}` },
    });
    this.scope = `${props.prefix}/${invoke.scopeName}`;
    this.tokenUrl = `${domain.baseUrl()}/oauth2/token`;
  }
}

/**
 * The API's auth from CDK context, so a deploy chooses it without code:
 * `-c canon:apiAuth=jwt -c canon:jwtIssuer=https://… -c canon:jwtAudience=a,b`, or `iam`.
 * @default cognito
 */
export function apiAuthFromContext(scope: IConstruct): ApiAuth {
  const kind = scope.node.tryGetContext("canon:apiAuth") ?? "cognito";
  if (kind === "cognito" || kind === "iam") return { kind };
  if (kind !== "jwt") throw new Error(`canon:apiAuth must be cognito, jwt or iam, not "${kind}"`);
  const issuer = scope.node.tryGetContext("canon:jwtIssuer");
  const audience = String(scope.node.tryGetContext("canon:jwtAudience") ?? "")
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  if (typeof issuer !== "string" || !issuer.startsWith("https://") || audience.length === 0)
    throw new Error("canon:apiAuth=jwt needs canon:jwtIssuer (https://…) and canon:jwtAudience (comma-separated)");
  return { kind, issuer, audience };
}
