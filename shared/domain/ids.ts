import { createHash } from "node:crypto";

/**
 * A UUID-shaped id derived from its parts: the same cause always yields the same id, so a
 * retried or redelivered step produces nothing new (idempotency by construction).
 */
export function deterministicId(...parts: readonly string[]): string {
  const hex = createHash("sha256").update(parts.join("\n")).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
