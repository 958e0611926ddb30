/**
 * cdk-nag acknowledgements name a finding exactly: `AwsSolutions-IAM5[Resource::<Bucket.Arn>/*]`.
 * This renders a resource the way cdk-nag does, so an acknowledgement names one resource, not
 * every wildcard of the rule.
 */
import { Stack } from "aws-cdk-lib";
import type { IConstruct } from "constructs";

// biome-ignore lint/suspicious/noExplicitAny: resolved CloudFormation JSON
type Json = any;

/** `Resource::…` for an IAM5 finding on this resource (an ARN, possibly with tokens), as cdk-nag writes it. */
export function nagResource(scope: IConstruct, resource: string): string {
  return `Resource::${flatten(Stack.of(scope).resolve(resource))}`;
}

function flatten(node: Json): string {
  if (typeof node === "string") return node.replace(/\$\{/g, "<").replace(/}/g, ">");
  if (node?.["Fn::Join"]) {
    const [delimiter, items] = node["Fn::Join"] as [string, Json[]];
    return items.map(flatten).join(delimiter);
  }
  if (node?.["Fn::GetAtt"]) {
    const [resource, attribute] = node["Fn::GetAtt"] as [Json, Json];
    return `<${flatten(resource)}.${flatten(attribute)}>`;
  }
  if (node?.Ref !== undefined) return `<${flatten(node.Ref)}>`;
  if (node?.["Fn::Sub"] !== undefined) return flatten(node["Fn::Sub"]);
  return JSON.stringify(node);
}
