/**
 * Names of deployed resources that both the CDK app (infra/) and the tools reading a deployed
 * system (the console's AWS source) must agree on: the SSM parameters a bus stack publishes,
 * the tags every function carries, and the warm-up state machines' names. The plan's own
 * names (streams, queues, tables) are in shared/plan.ts.
 */

/** The SSM parameters a bus stack publishes, so services find their bus by name. */
export const busParameters = {
  streamArn: (prefix: string, bus: string) => `/canon/${prefix}/bus/${bus}/stream-arn`,
  topicArn: (prefix: string, bus: string) => `/canon/${prefix}/bus/${bus}/topic-arn`,
  /** The archive bucket's (globally unique) name. */
  archiveBucket: (prefix: string, bus: string) => `/canon/${prefix}/bus/${bus}/archive-bucket`,
} as const;

/** The tags every function and stack carries; the laws (infra/laws.ts) and the console read them. */
export const tagKeys = {
  app: "canon:app",
  owner: "canon:owner",
  role: "canon:role",
  function: "canon:function",
} as const;

/** A warm-up state machine's name: `{prefix}-{consumer}-warm-up`, at most 80 characters (its limit). */
export function warmUpName(prefix: string, consumerId: string): string {
  return `${prefix}-${consumerId}-warm-up`.slice(0, 80);
}
