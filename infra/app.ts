/**
 * The CDK app (`npx cdk synth`, `npx cdk deploy --all`): every stack of the example
 * application, built from its one declaration through the shared plan.
 *
 * The stacks are environment-agnostic: they need no lookups, so `cdk synth` works
 * offline without credentials, and `cdk deploy` targets the account and region of the
 * caller's AWS profile.
 */
import { App } from "aws-cdk-lib";
import { app as definition } from "../functions/app.ts";
import { planApp } from "../shared/plan.ts";
import { addCanonStacks } from "./canon-app.ts";

const app = new App();
addCanonStacks(app, planApp(definition));
app.synth();
