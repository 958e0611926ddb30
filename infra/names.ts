/**
 * Names the stacks, the SSM parameters and the KMS aliases that let one stack find another by
 * name (never by a CloudFormation export, so every stack deploys and destroys alone).
 */
import type { FunctionRole, Owner } from "../shared/plan.ts";

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
  /** The operator console's IAM policy (and optional role): infra/console-access.ts. */
  consoleAccess: (prefix: string) => `${pascal(prefix)}-ConsoleAccess`,
  /** The app's alarm topic: infra/alarms-stack.ts. */
  alarms: (prefix: string) => `${pascal(prefix)}-Alarms`,
} as const;

/**
 * The SNS topic every alarm of the app notifies (infra/alarms-stack.ts). Other stacks name it
 * by this name (its ARN is built from it), never through the alarms stack's constructs.
 */
export function alarmTopicName(prefix: string): string {
  return `${prefix}-alarms`;
}

/** The alias of the KMS key that encrypts the alarm topic (and its undelivered-notifications queue). */
export function alarmKeyAlias(prefix: string): string {
  return `alias/${prefix}/alarms`;
}

export { busParameters, tagKeys } from "../shared/aws/deployed-names.ts";

/**
 * The alias of the KMS key that encrypts a bus's archive. A service's replayer reading the
 * archive is granted the key through this alias, as senders are granted queue keys.
 */
export function archiveKeyAlias(prefix: string, bus: string): string {
  return `alias/${prefix}/bus-${bus}/archive`;
}

/** The alias of the KMS key that encrypts a telemetry bus's Parquet files and its Athena results. */
export function telemetryKeyAlias(prefix: string, bus: string): string {
  return `alias/${prefix}/bus-${bus}/telemetry`;
}

/** The Glue database of a bus's archive (Athena names take no hyphen unquoted). */
export function archiveDatabaseName(prefix: string, bus: string): string {
  return `${prefix}_${bus}`.replaceAll("-", "_");
}

/**
 * The alias of the KMS key that encrypts an owner's queues. A function of another stack that
 * may send to one of them (the API, a reactor) is granted the key through this alias
 * (`kms:ResourceAliases`), so it needs no reference to the owner's stack.
 */
export function queueKeyAlias(prefix: string, owner: Owner): string {
  return `alias/${prefix}/${ownerSlug(owner)}/queues`;
}

export function sameOwner(a: Owner, b: Owner): boolean {
  return a.kind === b.kind && (a.kind === "api" || a.name === (b as { name: string }).name);
}

/** Tag value of an owner: "bus:core", "service:accounts", "api". */
export function ownerTag(owner: Owner): string {
  return owner.kind === "api" ? "api" : `${owner.kind}:${owner.name}`;
}

/** The owner a `canon:owner` tag value names, or undefined if it names none. */
export function parseOwnerTag(value: string | undefined): Owner | undefined {
  if (value === "api") return { kind: "api" };
  const match = /^(bus|service):(.+)$/.exec(value ?? "");
  if (!match?.[2]) return undefined;
  return match[1] === "bus" ? { kind: "bus", name: match[2] } : { kind: "service", name: match[2] };
}

/** An owner in names that take no colon: "bus-core", "service-accounts", "api". */
export function ownerSlug(owner: Owner): string {
  return ownerTag(owner).replace(":", "-");
}

const roles: Record<FunctionRole, true> = {
  api: true,
  "command-handler": true,
  projection: true,
  reactor: true,
  relay: true,
  archiver: true,
  replayer: true,
  journeys: true,
};

/** Every value a `canon:role` tag may take (the plan's `FunctionRole`). */
export const functionRoles = Object.keys(roles) as FunctionRole[];

export function isFunctionRole(value: string | undefined): value is FunctionRole {
  return value !== undefined && Object.hasOwn(roles, value);
}

/** An id without its owner's name in front ("accounts-commands" → "commands"), for names that already hold the owner. */
export function localId(id: string, owner: Owner): string {
  const name = owner.kind === "api" ? "api" : owner.name;
  return id.startsWith(`${name}-`) ? id.slice(name.length + 1) : id;
}
