/**
 * Test support: a system running on the embedded local cloud, registered with the fake
 * control plane (test/support/fake-aws-control.ts) as CDK would deploy it — its functions
 * with their `canon:*` tags, their event source mappings (a `warmUp` projection's disabled),
 * the archive buckets' SSM parameters and the warm-up state machines — so the console's AWS
 * source reads it as a deployed app.
 */
import { warmUpName } from "../../shared/aws/deployed-names.ts";
import type { FakeAwsControl } from "./fake-aws-control.ts";
import type { TestSystem } from "./system.ts";

export const account = "000000000000";
export const region = "us-east-1";
export const functionName = (id: string) => `Canon-${id}-X1Y2Z3`;
export const functionArn = (id: string) => `arn:aws:lambda:${region}:${account}:function:${functionName(id)}`;

/** Registers the plan's functions, mappings, archive parameters and warm-up machines with the fake, as a deploy would. */
export function deployToFake(fake: FakeAwsControl, system: TestSystem, options: { skip?: string } = {}) {
  const { plan, resources } = system;
  for (const fn of plan.functions) {
    if (fn.id === options.skip) continue;
    fake.addFunction({ arn: functionArn(fn.id), tags: { "canon:app": plan.prefix, "canon:function": fn.id } });
    if (fn.source.kind === "sqs" || fn.source.kind === "kinesis") {
      fake.addEventSourceMapping({
        uuid: `uuid-${fn.id}`,
        functionArn: functionArn(fn.id),
        eventSourceArn: `arn:aws:sqs:${region}:${account}:${fn.source.kind === "sqs" ? fn.source.queueId : fn.source.bus}`,
        state: fn.startsDetached ? "Disabled" : "Enabled",
      });
    }
    if (fn.startsDetached) {
      const name = warmUpName(plan.prefix, fn.id);
      fake.addStateMachine({ name, arn: `arn:aws:states:${region}:${account}:stateMachine:${name}` });
    }
  }
  for (const [bus, bucket] of resources.archiveBuckets) {
    fake.setParameter(`/canon/${plan.prefix}/bus/${bus}/archive-bucket`, bucket);
  }
}
