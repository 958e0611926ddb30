/** Whether a DynamoDB write failed its condition (by name: works across SDK copies). */
export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === "ConditionalCheckFailedException";
}
