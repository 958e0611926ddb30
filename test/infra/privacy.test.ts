/**
 * Personal data on AWS (infra/privacy.ts): the subject keys' KMS key (rotation on) and table
 * (PITR, encrypted, retained), the erase route behind IAM, and each function's grants — a command
 * handler and the API may make and unwrap data keys, a projection only unwrap, a state projection
 * and the relay nothing — with every law and cdk-nag holding.
 */
import type { Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { app as definition } from "../../functions/app.ts";
import { addCanonStacks } from "../../infra/canon-app.ts";
import { addPrivacy, subjectKeysAlias } from "../../infra/privacy.ts";
import { planApp } from "../../shared/plan.ts";
import { privacyEnv } from "../../shared/privacy/env.ts";
import { type Json, resources, tag, target, testApp } from "./support.ts";

const app = testApp();
const plan = planApp(definition);
const stacks = addCanonStacks(app, plan);
const privacy = addPrivacy(app, plan, stacks);
app.synth(); // the laws (infra/laws.ts) run here: a grant beyond subjectKeyActions fails synthesis
const json = (stack: Stack) => Template.fromStack(stack).toJSON();

/** The environment and policy statements of the function tagged with this plan id. */
function functionOf(stack: Stack, functionId: string): { env: Record<string, unknown>; statements: Json[] } {
  const template = json(stack);
  const found = resources(template, "AWS::Lambda::Function").find(([, r]) => tag(r, "canon:function") === functionId);
  if (found === undefined) throw new Error(`no function ${functionId}`);
  const role = target(found[1].Properties.Role);
  const statements = resources(template, "AWS::IAM::Policy")
    .filter(([, p]) => p.Properties.Roles.some((r: Json) => target(r) === role))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
  return { env: found[1].Properties.Environment?.Variables ?? {}, statements };
}

const actionsOf = (statements: Json[], pattern: RegExp) =>
  statements
    .flatMap((s) => [s.Action].flat())
    .filter((a: string) => pattern.test(a))
    .sort();

describe("the privacy stack", () => {
  const template = Template.fromStack(privacy);

  it("keeps the subject keys under a rotating KMS key, in a retained table with PITR", () => {
    template.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
    template.hasResourceProperties("AWS::KMS::Alias", { AliasName: subjectKeysAlias(plan.prefix) });
    template.hasResource("AWS::DynamoDB::Table", {
      DeletionPolicy: "Retain",
      Properties: Match.objectLike({
        TableName: `${plan.prefix}-subject-keys`,
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true, RecoveryPeriodInDays: 7 },
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
      }),
    });
  });

  it("serves the erase route behind IAM only, to a function that updates the keys and appends to the bus", () => {
    template.hasResourceProperties("AWS::ApiGatewayV2::Route", {
      RouteKey: "POST /admin/subjects/{subject}/erase",
      AuthorizationType: "AWS_IAM",
    });
    template.hasResourceProperties("AWS::SSM::Parameter", { Name: `/canon/${plan.prefix}/privacy/admin-url` });
    const erase = functionOf(privacy, "subject-erase");
    expect(actionsOf(erase.statements, /^(dynamodb|kinesis|kms):/)).toEqual([
      "dynamodb:UpdateItem",
      "kinesis:PutRecord",
      "kinesis:PutRecords",
    ]);
    expect(erase.env[privacyEnv.keyCacheTtlMs]).toBe("20000");
  });

  it("grants sealing to the API and command handlers, opening to projections, and nothing to the rest", () => {
    const accounts = stacks.services.get("accounts") as Stack;
    const handler = functionOf(accounts, "accounts-command-handler");
    expect(handler.env[privacyEnv.kmsKeyId]).toBe(subjectKeysAlias(plan.prefix));
    expect(handler.env[privacyEnv.keysTable]).toBe(`${plan.prefix}-subject-keys`);
    expect(actionsOf(handler.statements, /^kms:(GenerateDataKey|Decrypt)$/)).toEqual(
      expect.arrayContaining(["kms:Decrypt", "kms:GenerateDataKey"]),
    );
    const keyGrants = (fn: { statements: Json[] }) =>
      fn.statements
        .filter((s) => JSON.stringify(s.Condition ?? {}).includes(subjectKeysAlias(plan.prefix)))
        .flatMap((s) => [s.Action].flat())
        .sort();
    expect(keyGrants(handler)).toEqual(["kms:Decrypt", "kms:GenerateDataKey"]);

    const balances = functionOf(accounts, "accounts-balances");
    expect(balances.env[privacyEnv.keysTable]).toBe(`${plan.prefix}-subject-keys`);
    const subjectKeyStatements = (fn: { statements: Json[] }) =>
      fn.statements.filter((s) => JSON.stringify(s.Resource).includes("table/canon-subject-keys"));
    expect(subjectKeyStatements(balances).flatMap((s) => [s.Action].flat())).toEqual(["dynamodb:GetItem"]);
    expect(keyGrants(balances)).toEqual(["kms:Decrypt"]);
    expect(
      subjectKeyStatements(handler)
        .flatMap((s) => [s.Action].flat())
        .sort(),
    ).toEqual(["dynamodb:GetItem", "dynamodb:PutItem"]);

    const state = functionOf(accounts, "accounts-state");
    expect(state.env[privacyEnv.keysTable]).toBeUndefined();
    expect(subjectKeyStatements(state)).toEqual([]);
    expect(keyGrants(state)).toEqual([]);
    for (const api of ["api", "api-rpc"]) {
      const fn = functionOf(stacks.api, api);
      expect(keyGrants(fn)).toEqual(["kms:Decrypt", "kms:GenerateDataKey"]); // seals commands
      expect(
        subjectKeyStatements(fn)
          .flatMap((s) => [s.Action].flat())
          .sort(),
      ).toEqual(["dynamodb:GetItem", "dynamodb:PutItem"]);
    }
    const relay = functionOf(stacks.buses.get("core") as Stack, "core-relay");
    expect(relay.env[privacyEnv.keysTable]).toBeUndefined();
  });

  it("has no unsuppressed cdk-nag (AwsSolutions) finding", () => {
    expect(new AwsSolutionsChecks().validateScope(app).violations).toEqual([]);
  });
});
