/**
 * The arbiter's persisted heads (the bus's arbitration table): each aggregate's accepted version
 * and the commit that made it. The relay judges each batch against them and persists them after
 * publishing; command handlers read them to learn their commits' fates (commit-wait.ts).
 */
import { batchGetItems } from "../aws/batch.ts";
import type { AggregateHead } from "../events/arbitrate.ts";

/** The heads of these aggregates (by arbiter key), read strongly consistent; an aggregate without one is absent. */
export async function readHeads(table: string, keys: readonly string[]): Promise<Map<string, AggregateHead>> {
  const items = await batchGetItems(
    table,
    [...new Set(keys)].map((id) => ({ id })),
  );
  return new Map(
    items.map((item) => [String(item.id), { version: Number(item.version), lastCommitId: String(item.lastCommitId) }]),
  );
}
