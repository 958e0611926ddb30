/**
 * The API: the client's one entry point. Its function sits behind an HTTP API that
 * only accepts SigV4-signed (IAM) calls; it sends commands to the services' queues and
 * reads their tables, all found by physical name from the plan.
 */
import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import * as apigw from "aws-cdk-lib/aws-apigatewayv2";
import { HttpIamAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type { Construct } from "constructs";
import type { AppPlan, Owner } from "../shared/plan.ts";
import { addOwnedFunctions } from "./canon-function.ts";
import { type OwnedResourceOptions, PlanResources } from "./resources.ts";

export interface ApiStackProps extends StackProps, OwnedResourceOptions {
  readonly plan: AppPlan;
}

export class ApiStack extends Stack {
  readonly httpApi: apigw.HttpApi;

  constructor(scope: Construct, id: string, props: ApiStackProps) {
    super(scope, id, props);
    const { plan } = props;
    const owner: Owner = { kind: "api" };
    const resources = new PlanResources(this, plan);
    resources.addOwned(owner, props);

    const functions = addOwnedFunctions(this, resources, owner);
    const handler = [...functions].find(([planned]) => planned.source.kind === "http")?.[1];
    if (!handler) throw new Error("the plan has no function behind the HTTP API");

    this.httpApi = new apigw.HttpApi(this, "HttpApi", {
      apiName: `${plan.prefix}-api`,
      defaultIntegration: new HttpLambdaIntegration("Handler", handler.function),
      defaultAuthorizer: new HttpIamAuthorizer(), // unsigned calls get 403 before reaching Lambda
    });
    new CfnOutput(this, "ApiUrl", { value: this.httpApi.apiEndpoint });
  }
}
