/**
 * The operator console's IAM access (infra/console-access.ts), as a specification of what an
 * operator may do with `canon console --aws`: each statement's actions and resources, computed
 * here from the plan, not from the stack's own helpers; nothing on `*` but the four actions
 * without resource-level permission; no write but a message sent to a consumed queue (a redrive
 * request, a dead letter sent back), its deletion from that queue's dead-letter queue, and a
 * warm-up's start; failure queues only peeked; the optional role and whom it trusts; the
 * ordering after the bus stacks; the laws and cdk-nag; and an app too large for one policy.
 */
import type { Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { app as definition } from "../../functions/app.ts";
import { addCanonStacks, applyCanonChecks, stacksPropsFromContext } from "../../infra/canon-app.ts";
import {
  ConsoleAccessStack,
  consoleAccessName,
  consoleActions,
  managedPolicyMaxSize,
} from "../../infra/console-access.ts";
import { archiveKeyAlias, busParameters, queueKeyAlias, stackNames } from "../../infra/names.ts";
import { warmUpName } from "../../shared/aws/deployed-names.ts";
import { type AppPlan, envNames, planApp } from "../../shared/plan.ts";
import type { AppDefinition } from "../../shared/topology.ts";
import { warmUpApp } from "./fixtures/warm-up.ts";
import { type Json, resources, synthesize, testApp } from "./support.ts";

/** A statement of the console's policies, its resources rendered as ARN-like text. */
interface Statement {
  readonly sid: string;
  readonly actions: string[];
  readonly resources: string[];
  readonly condition: Json;
  readonly raw: Json;
}

/** `arn:aws:…:REGION:ACCOUNT:…`; an archive bucket's SSM parameter becomes `{archive:<bus>}`. */
function render(value: Json, template: Json, plan: AppPlan, longest = false): Json {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map((v) => render(v, template, plan, longest));
  if (value === null || typeof value !== "object") return value;
  if (typeof value.Ref === "string") {
    const pseudo: Record<string, string> = longest
      ? { "AWS::Partition": "aws-cn", "AWS::Region": "ap-southeast-5", "AWS::AccountId": "123456789012" }
      : { "AWS::Partition": "aws", "AWS::Region": "REGION", "AWS::AccountId": "ACCOUNT" };
    if (pseudo[value.Ref] !== undefined) return pseudo[value.Ref];
    const parameter = template.Parameters?.[value.Ref]?.Default;
    const bus = plan.buckets.find((b) => busParameters.archiveBucket(plan.prefix, b.bus) === parameter)?.bus;
    if (bus === undefined) throw new Error(`unexpected reference ${value.Ref}`);
    return longest ? "b".repeat(63) : `{archive:${bus}}`;
  }
  if (Array.isArray(value["Fn::Join"])) {
    const [delimiter, parts] = value["Fn::Join"];
    return parts.map((p: Json) => render(p, template, plan, longest)).join(delimiter);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, render(v, template, plan, longest)]));
}

function policiesOf(template: Json): [string, Json][] {
  return resources(template, "AWS::IAM::ManagedPolicy");
}

function statementsOf(template: Json, plan: AppPlan): Statement[] {
  return policiesOf(template).flatMap(([, policy]) =>
    (policy.Properties.PolicyDocument.Statement as Json[]).map((raw) => ({
      sid: raw.Sid,
      actions: [raw.Action].flat(),
      resources: [raw.Resource].flat().map((r: Json) => render(r, template, plan)),
      condition: raw.Condition,
      raw,
    })),
  );
}

/** The resources on which some statement allows the action. */
function allowedOn(statements: readonly Statement[], action: string): string[] {
  return [...new Set(statements.filter((s) => s.actions.includes(action)).flatMap((s) => s.resources))].sort();
}

/** The KMS aliases some statement allows the action on (always through `kms:ResourceAliases`). */
function aliasesFor(statements: readonly Statement[], action: string): string[] {
  return [
    ...new Set(
      statements
        .filter((s) => s.actions.includes(action))
        .flatMap((s) => [s.condition?.["ForAnyValue:StringEquals"]?.["kms:ResourceAliases"]].flat()),
    ),
  ].sort();
}

/** What the plan says the console may touch, computed independently of the stack. */
function expected(plan: AppPlan) {
  const arn = (service: string, resource: string) => `arn:aws:${service}:REGION:ACCOUNT:${resource}`;
  const queue = (name: string) => arn("sqs", name);
  const failureIds = new Set(
    plan.functions.flatMap((fn) => [
      ...(fn.source.kind === "kinesis" ? [fn.source.onFailureQueueId] : []),
      ...Object.entries(fn.env).flatMap(([name, ref]) =>
        name === envNames.deadLetterQueueUrl && ref.kind === "queue" ? [ref.id] : [],
      ),
    ]),
  );
  // A consumed queue is any planned queue that is not a failure destination: its dead letters may be sent back.
  const failures = plan.queues.filter((q) => failureIds.has(q.id));
  const consumed = plan.queues.filter((q) => !failureIds.has(q.id));
  const received = [
    ...plan.queues.map((q) => ({ name: q.deadLetterQueueName, owner: q.owner })),
    ...failures.map((q) => ({ name: q.name, owner: q.owner })),
  ];
  const machines = plan.functions
    .filter((fn) => fn.startsDetached === true)
    .map((fn) => warmUpName(plan.prefix, fn.id));
  const sorted = (items: string[]) => [...new Set(items)].sort();
  return {
    streams: sorted(plan.streams.map((s) => arn("kinesis", `stream/${s.name}`))),
    everyQueue: sorted(plan.queues.flatMap((q) => [queue(q.name), queue(q.deadLetterQueueName)])),
    received: sorted(received.map((q) => queue(q.name))),
    consumed: sorted(consumed.map((q) => queue(q.name))),
    consumedDeadLetters: sorted(consumed.map((q) => queue(q.deadLetterQueueName))),
    failureSide: sorted(failures.flatMap((q) => [queue(q.name), queue(q.deadLetterQueueName)])),
    deadLetterQueues: sorted(plan.queues.map((q) => queue(q.deadLetterQueueName))),
    receivedKeys: sorted(received.map((q) => queueKeyAlias(plan.prefix, q.owner))),
    consumedKeys: sorted(consumed.map((q) => queueKeyAlias(plan.prefix, q.owner))),
    busKeys: sorted(plan.streams.map((s) => queueKeyAlias(plan.prefix, { kind: "bus", name: s.bus }))),
    archiveKeys: sorted(plan.buckets.map((b) => archiveKeyAlias(plan.prefix, b.bus))),
    tables: sorted(plan.tables.map((t) => arn("dynamodb", `table/${t.name}`))),
    buckets: sorted(plan.buckets.map((b) => `arn:aws:s3:::{archive:${b.bus}}`)),
    objects: sorted(plan.buckets.map((b) => `arn:aws:s3:::{archive:${b.bus}}/*`)),
    parameters: [arn("ssm", `parameter/canon/${plan.prefix}/*`)],
    // The telemetry bus's files and their SQL (the console's hop latency panel, by Athena).
    telemetryKeys: sorted(plan.telemetry.map((t) => `alias/${plan.prefix}/bus-${t.bus}/telemetry`)),
    telemetryBuckets: sorted(plan.telemetry.map((t) => `arn:aws:s3:::${t.bucket}-ACCOUNT-REGION`)),
    telemetryObjects: sorted(
      plan.telemetry.flatMap((t) => [
        `arn:aws:s3:::${t.bucket}-ACCOUNT-REGION/${t.prefix}*`,
        `arn:aws:s3:::${t.bucket}-ACCOUNT-REGION/athena-results/*`,
      ]),
    ),
    telemetryResults: sorted(plan.telemetry.map((t) => `arn:aws:s3:::${t.bucket}-ACCOUNT-REGION/athena-results/*`)),
    workGroups: sorted(plan.telemetry.map((t) => arn("athena", `workgroup/${t.workGroup}`))),
    catalog: sorted(
      plan.telemetry.flatMap((t) => [
        arn("glue", "catalog"),
        arn("glue", `database/${t.database}`),
        arn("glue", `table/${t.database}/${t.table}`),
        arn("glue", `table/${t.database}/telemetry`),
      ]),
    ),
    machines: sorted(machines.map((m) => arn("states", `stateMachine:${m}`))),
    executions: sorted(machines.map((m) => arn("states", `execution:${m}:*`))),
    anyKey: arn("kms", "key/*"),
  };
}

/** Verbs of actions that change something. The console's only changes are SendMessage, DeleteMessage and StartExecution. */
const writeVerbs = [
  "Put",
  "Update",
  "Delete",
  "Create",
  "Invoke",
  "Batch",
  "Write",
  "Tag",
  "Untag",
  "Purge",
  "Change",
  "Set",
  "Enable",
  "Disable",
  "Stop",
  "Publish",
  "Pass",
  "Restore",
  "Import",
  "Export",
  "Register",
  "Deregister",
  "Modify",
  "Add",
  "Remove",
  "Encrypt",
  "ReEncrypt",
  "Terminate",
  "Redrive",
  "Subscribe",
  "Merge",
  "Split",
  "Increase",
  "Decrease",
  "Attach",
  "Detach",
  "Associate",
  "Send",
  "Start",
];

/** Every statement of the policies, checked group by group against `expected(plan)`. */
function checkGrants(statements: readonly Statement[], plan: AppPlan): void {
  const want = expected(plan);
  // Each statement grants exactly one group of consoleActions, named by its Sid.
  for (const statement of statements) {
    const group = Object.keys(consoleActions).find(
      (g) => g.toLowerCase() === statement.sid.replace(/\d+$/, "").toLowerCase(),
    ) as keyof typeof consoleActions | undefined;
    expect(group, statement.sid).toBeDefined();
    expect([...statement.actions].sort(), statement.sid).toEqual([...consoleActions[group ?? "unscoped"]].sort());
    expect(statement.raw.Effect, statement.sid).toBe("Allow");
    for (const key of ["NotAction", "NotResource", "Principal", "NotPrincipal"]) {
      expect(statement.raw[key], `${statement.sid} ${key}`).toBeUndefined();
    }
  }

  // Nothing on an unconditional * but the four actions IAM cannot scope.
  for (const statement of statements.filter((s) => s.resources.includes("*"))) {
    expect(statement.resources).toEqual(["*"]);
    expect(statement.condition).toBeUndefined();
    expect([...statement.actions].sort()).toEqual(
      [
        "cloudwatch:GetMetricData",
        "lambda:ListEventSourceMappings",
        "states:ListStateMachines",
        "tag:GetResources",
      ].sort(),
    );
  }

  for (const action of consoleActions.streams) expect(allowedOn(statements, action), action).toEqual(want.streams);
  for (const action of consoleActions.tables) expect(allowedOn(statements, action), action).toEqual(want.tables);
  for (const action of ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"]) {
    expect(allowedOn(statements, action), action).toEqual(want.everyQueue);
  }
  expect(allowedOn(statements, "sqs:ReceiveMessage")).toEqual(want.received);
  // Send back (canon dlq move): sent to a consumed queue, deleted from its dead-letter queue; nothing else.
  expect(allowedOn(statements, "sqs:SendMessage")).toEqual(want.consumed);
  expect(allowedOn(statements, "sqs:DeleteMessage")).toEqual(want.consumedDeadLetters);
  expect(want.consumed.length).toBeGreaterThan(0);
  expect(want.failureSide.length).toBeGreaterThan(0);
  // Failure queues and their dead-letter queues are only peeked; no dead-letter queue is sent to.
  for (const q of [...want.failureSide, ...want.deadLetterQueues]) {
    expect(allowedOn(statements, "sqs:SendMessage"), q).not.toContain(q);
  }
  for (const q of want.failureSide) {
    expect(allowedOn(statements, "sqs:DeleteMessage"), q).not.toContain(q);
    expect(allowedOn(statements, "sqs:ReceiveMessage"), q).toContain(q);
  }
  // No consumed queue is received from or deleted from (its consumer does that).
  for (const q of want.consumed) {
    expect(allowedOn(statements, "sqs:ReceiveMessage"), q).not.toContain(q);
    expect(allowedOn(statements, "sqs:DeleteMessage"), q).not.toContain(q);
  }

  // Keys only by alias, on key/* with the kms:ResourceAliases condition.
  for (const statement of statements.filter((s) => s.actions.some((a) => a.startsWith("kms:")))) {
    expect(statement.resources, statement.sid).toEqual([want.anyKey]);
    expect(Object.keys(statement.condition ?? {}), statement.sid).toEqual(["ForAnyValue:StringEquals"]);
    expect(Object.keys(statement.condition["ForAnyValue:StringEquals"]), statement.sid).toEqual([
      "kms:ResourceAliases",
    ]);
  }
  expect(aliasesFor(statements, "kms:Decrypt")).toEqual(
    [...new Set([...want.receivedKeys, ...want.consumedKeys, ...want.archiveKeys, ...want.telemetryKeys])].sort(),
  );
  // Encrypting: a message sent to a consumed queue, and Athena's results of a telemetry query.
  expect(aliasesFor(statements, "kms:GenerateDataKey")).toEqual([...want.consumedKeys, ...want.telemetryKeys].sort());
  // A bus owns only failure queues: its queue key decrypts peeked messages, never encrypts a sent one.
  for (const alias of want.busKeys) {
    expect(aliasesFor(statements, "kms:Decrypt"), alias).toContain(alias);
    expect(aliasesFor(statements, "kms:GenerateDataKey"), alias).not.toContain(alias);
  }

  expect(allowedOn(statements, "s3:ListBucket")).toEqual([...want.buckets, ...want.telemetryBuckets].sort());
  expect(allowedOn(statements, "s3:GetObject")).toEqual([...want.objects, ...want.telemetryObjects].sort());
  // A telemetry query: started in the bus's workgroup, through its catalog, its results written under their prefix only.
  for (const action of consoleActions.telemetryQueries) {
    expect(allowedOn(statements, action), action).toEqual(want.workGroups);
  }
  for (const action of consoleActions.telemetryCatalog)
    expect(allowedOn(statements, action), action).toEqual(want.catalog);
  for (const action of consoleActions.telemetryResults) {
    expect(allowedOn(statements, action), action).toEqual(want.telemetryResults);
  }
  expect(allowedOn(statements, "ssm:GetParameter")).toEqual(want.parameters);
  for (const action of consoleActions.warmUps) expect(allowedOn(statements, action), action).toEqual(want.machines);
  for (const action of consoleActions.warmUpExecutions) {
    expect(allowedOn(statements, action), action).toEqual(want.executions);
  }

  // No write: no action of a write verb but the two the console needs, no wildcard action.
  const actions = [...new Set(statements.flatMap((s) => s.actions))].sort();
  // An app without a telemetry bus has nothing for the telemetry groups to act on.
  const telemetry = plan.telemetry.length > 0;
  const present = Object.entries(consoleActions).filter(([group]) => telemetry || !group.startsWith("telemetry"));
  expect(actions).toEqual([...new Set(present.flatMap(([, list]) => list))].sort());
  for (const action of actions) expect(action, action).not.toContain("*");
  const writes = actions.filter((action) => writeVerbs.some((verb) => action.split(":")[1]?.startsWith(verb)));
  expect(writes).toEqual(
    [
      "sqs:DeleteMessage",
      "sqs:SendMessage",
      "states:StartExecution",
      // Starting an Athena query writes its results (under the workgroup's prefix only).
      ...(telemetry ? ["athena:StartQueryExecution", "s3:PutObject"] : []),
    ].sort(),
  );
}

describe("the operator console's access, for the example app", () => {
  const { app, plan, stacks } = synthesize(definition);
  const stack = stacks.consoleAccess;
  const json = Template.fromStack(stack).toJSON();
  const statements = statementsOf(json, plan);

  it("is its own stack, Canon-ConsoleAccess, with the managed policy canon-operator-console and no role", () => {
    expect(stack.stackName).toBe(stackNames.consoleAccess("canon"));
    expect(stack.stackName).toBe("Canon-ConsoleAccess");
    // The example takes two managed policies: with the telemetry bus's Athena access it is past IAM's size limit.
    expect(policiesOf(json).map(([, p]) => p.Properties.ManagedPolicyName)).toEqual([
      consoleAccessName("canon"),
      "canon-operator-console-2",
    ]);
    expect(consoleAccessName("canon")).toBe("canon-operator-console");
    for (const [, policy] of policiesOf(json)) {
      expect(policy.Properties.Roles ?? policy.Properties.Users ?? policy.Properties.Groups).toBeUndefined();
    }
    expect(resources(json, "AWS::IAM::Role")).toEqual([]);
    expect(Object.keys(json.Resources).sort()).toEqual(
      policiesOf(json)
        .map(([id]) => id)
        .sort(),
    );
    expect(stack.tags.tagValues()).toMatchObject({ "canon:app": "canon" });
  });

  it("grants exactly what the console calls, on the app's own streams, queues, tables, archives, parameters and warm-ups", () => {
    checkGrants(statements, plan);
    // The example has one warming-up projection, so every group is there.
    expect(statements.map((s) => s.sid).sort()).toEqual(
      Object.keys(consoleActions)
        .map((g) => g.charAt(0).toUpperCase() + g.slice(1))
        .sort(),
    );
  });

  it("names the queues the console peeks, redrives and sends dead letters back to", () => {
    const sqs = (name: string) => `arn:aws:sqs:REGION:ACCOUNT:${name}`;
    expect(allowedOn(statements, "sqs:SendMessage")).toEqual(
      expect.arrayContaining([sqs("canon-accounts-balances.fifo"), sqs("canon-accounts-commands.fifo")]),
    );
    expect(allowedOn(statements, "sqs:DeleteMessage")).toEqual(
      expect.arrayContaining([sqs("canon-accounts-balances-dlq.fifo"), sqs("canon-accounts-commands-dlq.fifo")]),
    );
    for (const failures of ["canon-core-relay-failures", "canon-core-archiver-failures"]) {
      for (const name of [failures, `${failures}-dlq`]) {
        expect(allowedOn(statements, "sqs:SendMessage"), name).not.toContain(sqs(name));
        expect(allowedOn(statements, "sqs:DeleteMessage"), name).not.toContain(sqs(name));
        expect(allowedOn(statements, "sqs:ReceiveMessage"), name).toContain(sqs(name));
      }
    }
    expect(aliasesFor(statements, "kms:GenerateDataKey")).not.toContain("alias/canon/bus-core/queues");
    expect(allowedOn(statements, "sqs:ReceiveMessage")).toEqual(
      expect.arrayContaining([
        "arn:aws:sqs:REGION:ACCOUNT:canon-accounts-balances-dlq.fifo",
        "arn:aws:sqs:REGION:ACCOUNT:canon-core-relay-failures",
        "arn:aws:sqs:REGION:ACCOUNT:canon-core-archiver-failures",
      ]),
    );
    expect(allowedOn(statements, "sqs:ReceiveMessage")).not.toContain(
      "arn:aws:sqs:REGION:ACCOUNT:canon-accounts-balances.fifo",
    );
    expect(allowedOn(statements, "states:StartExecution")).toEqual([
      "arn:aws:states:REGION:ACCOUNT:stateMachine:canon-accounts-activity-warm-up",
    ]);
  });

  it("finds each archive through its bus's SSM parameter, so it deploys after every bus stack and nothing else", () => {
    for (const { bus } of plan.buckets) {
      expect(Object.values(json.Parameters).map((p: Json) => p.Default)).toContain(
        busParameters.archiveBucket("canon", bus),
      );
    }
    expect(stack.dependencies.map((d) => d.stackName).sort()).toEqual(
      plan.streams.map((s) => stackNames.bus("canon", s.bus)).sort(),
    );
    for (const other of [...stacks.services.values(), stacks.api]) {
      expect(other.dependencies, other.stackName).not.toContain(stack);
    }
  });

  it("outputs the policies' ARNs, exports nothing, and synthesizes environment-agnostic", () => {
    expect(Object.keys(json.Outputs)).toEqual(["PolicyArn", "PolicyArn2"]);
    expect(json.Outputs.PolicyArn.Value).toEqual({ Ref: policiesOf(json)[0]?.[0] });
    expect(json.Outputs.PolicyArn2.Value).toEqual({ Ref: policiesOf(json)[1]?.[0] });
    expect(json.Outputs.PolicyArn.Description).toMatch(/canon console --aws/);
    const text = JSON.stringify(json);
    expect(text).not.toContain("Fn::ImportValue");
    expect(text).not.toContain('"Export"');
    expect(stack.environment).toBe("aws://unknown-account/unknown-region");
  });

  it("fits IAM's managed-policy size limit with the longest partition, region and bucket names", () => {
    for (const [, policy] of policiesOf(json)) {
      const size = JSON.stringify(render(policy.Properties.PolicyDocument, json, plan, true)).length;
      expect(size).toBeLessThanOrEqual(managedPolicyMaxSize);
    }
  });

  it("breaks no law and has no cdk-nag finding; every acknowledgement carries a reason", () => {
    expect(() => app.synth()).not.toThrow();
    expect(new AwsSolutionsChecks().validateScope(stack).violations).toEqual([]);
    const reasons: string[] = [];
    const visit = (node: IConstruct) => {
      for (const entry of node.node.metadata) {
        if (entry.type !== "aws:cdk:acknowledged-rules") continue;
        for (const value of Object.values(entry.data as Record<string, Json>)) {
          reasons.push(typeof value === "string" ? value : value?.reason);
        }
      }
      for (const child of node.node.children) visit(child);
    };
    visit(stack);
    expect(reasons.length).toBeGreaterThan(0);
    for (const reason of reasons) expect(reason).toMatch(/\w{10}/);
  });
});

describe("the operator console role", () => {
  const plan = planApp(definition);
  const operators = [
    "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Ops_0123",
    "arn:aws:iam::111111111111:user/ada",
  ];

  function withContext(context: Record<string, unknown>): { stack: Stack; json: Json } {
    const app = testApp(context);
    const { consoleAccess } = addCanonStacks(app, plan, stacksPropsFromContext(app));
    app.synth(); // the laws and cdk-nag hold with the role too
    expect(new AwsSolutionsChecks().validateScope(consoleAccess).violations).toEqual([]);
    return { stack: consoleAccess, json: Template.fromStack(consoleAccess).toJSON() };
  }

  it("exists only with canon:consoleOperators, trusts exactly those principals, for an hour at most", () => {
    expect(resources(withContext({}).json, "AWS::IAM::Role")).toEqual([]);
    expect(resources(withContext({ "canon:consoleOperators": "" }).json, "AWS::IAM::Role")).toEqual([]);

    const { json } = withContext({ "canon:consoleOperators": ` ${operators[0]}, ${operators[1]} ` });
    const [[roleId, role]] = resources(json, "AWS::IAM::Role") as [[string, Json]];
    expect(resources(json, "AWS::IAM::Role")).toHaveLength(1);
    expect(role.Properties.RoleName).toBe("canon-operator-console");
    expect(role.Properties.MaxSessionDuration).toBe(3600);
    const trust: Json[] = role.Properties.AssumeRolePolicyDocument.Statement;
    expect(trust.map((s) => [s.Effect, s.Action])).toEqual(trust.map(() => ["Allow", "sts:AssumeRole"]));
    expect(trust.every((s) => s.Condition === undefined && Object.keys(s.Principal).join() === "AWS")).toBe(true);
    expect(trust.flatMap((s) => [s.Principal.AWS].flat()).sort()).toEqual([...operators].sort());
    // The console's policy, and nothing else: no inline policy, no AWS managed policy.
    expect(role.Properties.ManagedPolicyArns).toEqual(policiesOf(json).map(([id]) => ({ Ref: id })));
    expect(role.Properties.Policies).toBeUndefined();
    expect(resources(json, "AWS::IAM::Policy")).toEqual([]);
    expect(json.Outputs.RoleArn.Value).toEqual({ "Fn::GetAtt": [roleId, "Arn"] });
    expect(json.Outputs.RoleArn.Description).toMatch(/canon console --aws/);
  });

  it("takes the list from cdk.json too", () => {
    const { json } = withContext({ "canon:consoleOperators": operators });
    const [[, role]] = resources(json, "AWS::IAM::Role") as [[string, Json]];
    expect([role.Properties.AssumeRolePolicyDocument.Statement[0].Principal.AWS].flat().sort()).toEqual(
      [...operators].sort(),
    );
  });

  it("refuses a principal that is not an IAM ARN, naming the option", () => {
    for (const bad of ["ada", "111111111111", "arn:aws:s3:::bucket", "arn:aws:iam::111:role/x"]) {
      expect(() => withContext({ "canon:consoleOperators": bad }), bad).toThrow(/canon:consoleOperators must/);
    }
  });
});

describe("an app too large for one managed policy", () => {
  // The warm-up fixture with twenty more services: some 90 queues and 60 tables.
  const base = warmUpApp.services.find((s) => s.name === "billing");
  if (base === undefined) throw new Error("the fixture has no billing service");
  const large: AppDefinition = {
    ...warmUpApp,
    services: [
      ...warmUpApp.services,
      ...Array.from({ length: 20 }, (_, i) => ({ ...base, name: `extra${String(i).padStart(2, "0")}` })),
    ],
  };
  const plan = planApp(large);
  const app = testApp({ "canon:consoleOperators": "arn:aws:iam::111111111111:role/ops" });
  applyCanonChecks(app, plan);
  const stack = new ConsoleAccessStack(app, stackNames.consoleAccess(plan.prefix), {
    plan,
    operators: ["arn:aws:iam::111111111111:role/ops"],
  });
  const json = Template.fromStack(stack).toJSON();

  it("splits into canon-operator-console, -2, …, each within IAM's limit, still granting exactly the same", () => {
    const policies = policiesOf(json);
    expect(policies.length).toBeGreaterThan(1);
    expect(policies.map(([, p]) => p.Properties.ManagedPolicyName).sort()).toEqual(
      ["shop-operator-console", ...policies.slice(1).map((_, i) => `shop-operator-console-${i + 2}`)].sort(),
    );
    for (const [, policy] of policies) {
      const size = JSON.stringify(render(policy.Properties.PolicyDocument, json, plan, true)).length;
      expect(size).toBeLessThanOrEqual(managedPolicyMaxSize);
    }
    const statements = statementsOf(json, plan);
    expect(new Set(statements.map((s) => s.sid)).size).toBe(statements.length); // Sids stay unique
    checkGrants(statements, plan);
  });

  it("attaches every part to the role and outputs each", () => {
    const [[, role]] = resources(json, "AWS::IAM::Role") as [[string, Json]];
    expect(role.Properties.ManagedPolicyArns).toEqual(policiesOf(json).map(([id]) => ({ Ref: id })));
    expect(Object.keys(json.Outputs).filter((k) => k.startsWith("PolicyArn"))).toHaveLength(policiesOf(json).length);
  });

  it("synthesizes alone, breaking no law, with no cdk-nag finding", () => {
    expect(() => app.synth()).not.toThrow();
    expect(new AwsSolutionsChecks().validateScope(stack).violations).toEqual([]);
  });
});
