/**
 * What the infra tests share: an App with `cdk synth`'s feature flags and without bundling
 * (esbuild runs once, in bundling.test.ts), the Canon checks applied, and small readers of
 * synthesized CloudFormation.
 */
import { readFileSync } from "node:fs";
import { App, type Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { expect } from "vitest";
import { addCanonStacks, type CanonStacks, type CanonStacksProps } from "../../infra/canon-app.ts";
import { type AppPlan, planApp } from "../../shared/plan.ts";
import type { AppDefinition } from "../../shared/topology.ts";

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON
export type Json = any;

export interface Resource {
  readonly Type: string;
  readonly Properties: Json;
  readonly DeletionPolicy?: string;
}

/** The same feature flags as `cdk synth`. */
export const cdkContext: Record<string, unknown> = JSON.parse(
  readFileSync(new URL("../../cdk.json", import.meta.url), "utf8"),
).context;

/**
 * An App as `cdk synth` makes it, minus bundling (an empty list: no stack is bundled) and
 * minus CDK's built-in CloudFormation schema check (seconds of WebAssembly per app, and only
 * ever warnings; `npm run synth` keeps it).
 */
export function testApp(context: Record<string, unknown> = {}): App {
  return new App({
    context: { ...cdkContext, "aws:cdk:bundling-stacks": [], ...context },
    builtinCloudFormationValidation: false,
  });
}

export interface Synthesized {
  readonly app: App;
  readonly plan: AppPlan;
  readonly stacks: CanonStacks;
  readonly all: readonly Stack[];
  readonly templates: ReadonlyMap<Stack, Json>;
}

/** Every stack of an application, synthesized once (laws and cdk-nag included). */
export function synthesize(definition: AppDefinition, props: CanonStacksProps = {}): Synthesized {
  const app = testApp();
  const plan = planApp(definition);
  const stacks = addCanonStacks(app, plan, props);
  const all: Stack[] = [...stacks.buses.values(), ...stacks.services.values(), stacks.api, stacks.alarms];
  const templates = new Map(all.map((stack) => [stack, Template.fromStack(stack).toJSON()]));
  return { app, plan, stacks, all, templates };
}

export function resources(template: Json, type: string): [string, Resource][] {
  return Object.entries(template.Resources as Record<string, Resource>).filter(
    ([, resource]) => resource.Type === type,
  );
}

/** The one element of a list, failing the test if there is not exactly one. */
export function one<T>(items: readonly T[], label: string): T {
  expect(items, label).toHaveLength(1);
  return items[0] as T;
}

/** The logical id a `Ref` or `Fn::GetAtt` points at. */
export function target(value: Json): string {
  return value?.Ref ?? value?.["Fn::GetAtt"]?.[0];
}

export function tag(resource: Resource, key: string): string | undefined {
  return (resource.Properties.Tags as { Key: string; Value: string }[] | undefined)?.find((t) => t.Key === key)?.Value;
}

/** A template with what changes on every build (asset hashes) replaced, for snapshots. */
export function normalized(template: Json): Json {
  return JSON.parse(JSON.stringify(template).replace(/[0-9a-f]{64}/g, "<asset-hash>"));
}
