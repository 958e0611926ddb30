/**
 * Names the stacks and the SSM parameters that let one stack find another by name
 * (never by a CloudFormation export, so every stack deploys and destroys alone).
 */
import type { Owner } from "../shared/plan.ts";

/** "accounts-commands" → "AccountsCommands": readable construct ids, hence logical ids. */
export function pascal(id: string): string {
  return id
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}

export const stackNames = {
  bus: (prefix: string, bus: string) => `${pascal(prefix)}-Bus-${bus}`,
  service: (prefix: string, service: string) => `${pascal(prefix)}-Service-${service}`,
  api: (prefix: string) => `${pascal(prefix)}-Api`,
} as const;

/** The SSM parameters a bus stack publishes, so services find their bus by name. */
export const busParameters = {
  streamArn: (prefix: string, bus: string) => `/canon/${prefix}/bus/${bus}/stream-arn`,
  topicArn: (prefix: string, bus: string) => `/canon/${prefix}/bus/${bus}/topic-arn`,
} as const;

export function sameOwner(a: Owner, b: Owner): boolean {
  return a.kind === b.kind && (a.kind === "api" || a.name === (b as { name: string }).name);
}

/** Tag value of an owner: "bus:core", "service:accounts", "api". */
export function ownerTag(owner: Owner): string {
  return owner.kind === "api" ? "api" : `${owner.kind}:${owner.name}`;
}
