/**
 * The aggregate state table of a service: the fold of each aggregate's accepted events,
 * kept by the service's own state projection from the bus (law D), and read by its command
 * handler. It also marks each accepted commit, so the handler learns whether its commit won.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { batchGetItems } from "../aws/batch.ts";
import { dynamoClient } from "../aws/clients.ts";
import type { Decider } from "../domain/decider.ts";
import type { NewEvent } from "../events/envelope.ts";
import type { Upcaster } from "../events/upcast.ts";
import { aggregateProjection, type ProjectionHandler, projectionHandler } from "./projection.ts";

export interface StateItem<State> {
  readonly id: string;
  readonly version: number;
  /** The commit that made `version` (items written before it was kept lack it). */
  readonly lastCommitId?: string;
  readonly state: State;
}

export interface CommitMarker {
  readonly id: string;
  readonly version: number;
}

export const stateKey = (aggregateId: string) => `a#${aggregateId}`;
export const commitMarkerKey = (commitId: string) => `c#${commitId}`;

/** Reads an aggregate's state; a missing item is the decider's initial state at version 0. */
export async function readState<State>(table: string, aggregateId: string, initial: State): Promise<StateItem<State>> {
  const result = await dynamoClient().send(
    new GetCommand({ TableName: table, Key: { id: stateKey(aggregateId) }, ConsistentRead: true }),
  );
  return (result.Item as StateItem<State> | undefined) ?? { id: stateKey(aggregateId), version: 0, state: initial };
}

/** Whether a commit was accepted into its aggregate's history (its marker exists). */
export async function isCommitAccepted(table: string, commitId: string): Promise<boolean> {
  const result = await dynamoClient().send(
    new GetCommand({ TableName: table, Key: { id: commitMarkerKey(commitId) }, ConsistentRead: true }),
  );
  return result.Item !== undefined;
}

/** Reads several aggregates' states at once (BatchGetItem), keyed by aggregate id; missing ones are initial. */
export async function readStates<State>(
  table: string,
  aggregateIds: readonly string[],
  initial: State,
): Promise<Map<string, StateItem<State>>> {
  return statesFrom(aggregateIds, await batchGetItems(table, stateKeys(aggregateIds)), initial);
}

/** The keys of these aggregates' state items (each once), for a read of one's own. */
export function stateKeys(aggregateIds: readonly string[]): { id: string }[] {
  return [...new Set(aggregateIds)].map((id) => ({ id: stateKey(id) }));
}

/** The states of these aggregates among items read by `stateKeys`, keyed by aggregate id; missing ones are initial. */
export function statesFrom<State>(
  aggregateIds: readonly string[],
  items: readonly Record<string, unknown>[],
  initial: State,
): Map<string, StateItem<State>> {
  const byKey = new Map((items as unknown as StateItem<State>[]).map((item) => [item.id, item]));
  return new Map(
    [...new Set(aggregateIds)].map((id) => [
      id,
      byKey.get(stateKey(id)) ?? { id: stateKey(id), version: 0, state: initial },
    ]),
  );
}

/** Which of these commits were accepted into their aggregates' histories (their markers exist), in one read. */
export async function areCommitsAccepted(table: string, commitIds: readonly string[]): Promise<Set<string>> {
  const unique = [...new Set(commitIds)];
  const markers = await batchGetItems(
    table,
    unique.map((id) => ({ id: commitMarkerKey(id) })),
  );
  const found = new Set(markers.map((m) => String(m.id)));
  return new Set(unique.filter((id) => found.has(commitMarkerKey(id))));
}

/**
 * The Lambda handler of a service's state projection: folds each aggregate's events with the
 * decider's `evolve`, a batch at a time. The batch's commit markers are written first
 * (BatchWriteItem, as facts), then one conditional write per aggregate: markers precede state,
 * so a reader that sees the state past a version and no marker knows that commit lost.
 */
export function stateProjectionHandler<State>(
  decider: Decider<{ type: string }, NewEvent, State>,
  options: { readonly upcasters?: readonly Upcaster[] } = {},
): ProjectionHandler {
  const projection = aggregateProjection<StateItem<State>>({
    name: "state",
    upcasters: options.upcasters,
    key: (event) => stateKey(event.subject),
    evolve: (item, event) => ({
      id: stateKey(event.subject),
      version: event.aggregateversion,
      lastCommitId: event.commitid,
      state: decider.evolve(item?.state ?? decider.initialState, { type: event.type, data: event.data }),
    }),
    facts: (event) => [{ id: commitMarkerKey(event.commitid), version: event.aggregateversion } satisfies CommitMarker],
  });
  // Parked only where the plan says so (CANON_PARK_AFTER_RECEIVES), as before. Personal data stays
  // sealed in decision state: the state table never holds it in plaintext, so an erasure needs
  // nothing of it (docs/privacy.md).
  return projectionHandler({ ...projection, parkAfterReceives: undefined, personalData: "sealed" });
}
