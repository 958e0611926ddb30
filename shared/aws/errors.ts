/**
 * Whether an AWS SDK call failed with that error (`ResourceNotFoundException`, `NoSuchKey`, …):
 * the SDK names its service errors, and a name works across SDK copies where a class does not.
 * Canon's own errors have codes instead (shared/errors.ts).
 */
export function isAwsError(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}

/** Whether a DynamoDB write failed its condition. */
export function isConditionalCheckFailed(error: unknown): boolean {
  return isAwsError(error, "ConditionalCheckFailedException");
}
