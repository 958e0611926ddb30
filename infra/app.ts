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
import { addPrivacy } from "./privacy.ts";

const app = new App();
const plan = planApp(definition);
const stacks = addCanonStacks(app, plan, { ...stacksPropsFromContext(app), apiAuth: apiAuthFromContext(app) });
// Personal data: the subject keys' KMS key and table, the erase route, and each function's grants.
addPrivacy(app, plan, stacks);
app.synth();
