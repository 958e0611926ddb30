/**
 * The operator's erase route: `POST /admin/subjects/{subject}/erase`, body `{ "reason"?: string }`.
 * Locally the dev API serves it (loopback, the developer is the operator); on AWS it is a
 * function of its own behind an IAM-authorised route (infra/privacy.ts), and who asked is the
 * caller's IAM principal. Either way the answer is the erasure record.
 */
import type { ProvisionedResources } from "../local-cloud/provision.ts";
import type { AppPlan } from "../plan.ts";
import { type EraseTarget, eraseSubject, InvalidErasureError, keyCacheTtlFromEnv } from "./erase.ts";

export const eraseRoute = "/admin/subjects/:subject/erase";

export interface EraseAnswer {
  readonly status: 200 | 400;
  readonly body: Record<string, unknown>;
}

/** Carries out one erase request; bad input answers 400 with the reason. */
export async function answerErase(input: {
  readonly subject: string;
  readonly body: string;
  readonly by: string;
  readonly keysTable: string;
  readonly buses: readonly EraseTarget[];
}): Promise<EraseAnswer> {
  let reason: string | undefined;
  if (input.body.trim() !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(input.body);
    } catch {
      return { status: 400, body: { error: "the body is not JSON" } };
    }
    const given = (parsed as { reason?: unknown } | null)?.reason;
    if (given !== undefined && (typeof given !== "string" || given.length > 500))
      return { status: 400, body: { error: "reason: expected text of at most 500 characters" } };
    reason = given;
  }
  try {
    const erasure = await eraseSubject({
      keysTable: input.keysTable,
      subject: input.subject,
      by: input.by,
      ...(reason === undefined ? {} : { reason }),
      buses: input.buses,
      cacheTtlMs: keyCacheTtlFromEnv(),
    });
    return { status: 200, body: { ...erasure } };
  } catch (error) {
    if (error instanceof InvalidErasureError) return { status: 400, body: { error: error.message } };
    throw error;
  }
}

/** The buses a local system's erasures go to: those its services write to, with their streams and archives. */
export function localEraseTargets(
  plan: AppPlan,
  resources: ProvisionedResources,
  serviceBuses: readonly string[],
): EraseTarget[] {
  return plan.streams
    .filter((stream) => serviceBuses.includes(stream.bus))
    .map((stream) => ({
      bus: stream.bus,
      streamName: resources.streamNames.get(stream.bus) ?? stream.name,
      archiveBucket: resources.archiveBuckets.get(stream.bus) ?? "",
    }));
}
