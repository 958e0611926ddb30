/**
 * The CDK app (`npx cdk synth`, `npx cdk deploy --all`): every stack of the example
 * application, built from its one declaration through the shared plan, checked against the
 * laws and cdk-nag at synth.
 *
 * The stacks are environment-agnostic: they need no lookups, so `cdk synth` works
 * offline without credentials, and `cdk deploy` targets the account and region of the
 * caller's AWS profile. Deploy-time choices come from context (docs/deploy.md):
 * `canon:apiAuth`, `canon:jwtIssuer`, `canon:jwtAudience`, `canon:alarmEmail`,
 * `canon:alarmTopicArn`, `canon:archiveObjectLock`, `canon:archiveReplicationDestination`,
 * `canon:archiveSince`, `canon:archiveShardIds`, `canon:consoleOperators`, `canon:apiRateLimit`,
 * `canon:apiBurstLimit`.
 */
import { App } from "aws-cdk-lib";
import { app as definition } from "../functions/app.ts";
import { planApp } from "../shared/plan.ts";
import { apiAuthFromContext } from "./api-stack.ts";
import { addCanonStacks, stacksPropsFromContext } from "./canon-app.ts";

const app = new App();
addCanonStacks(app, planApp(definition), { ...stacksPropsFromContext(app), apiAuth: apiAuthFromContext(app) });
app.synth();
