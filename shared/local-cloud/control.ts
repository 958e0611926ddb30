/**
 * The local control table: what the operator changed at run time, shared by `canon dev` and
 * the `canon` commands that steer it. On AWS the same facts live in the event source mapping
 * (enabled or not) and the deployed configuration; locally this table carries them.
 *
 *   attach#<function>   a warming-up projection's consumer may run (`running` once it does)
 *   table#<function>    the table a projection's consumer writes, or that it is paused (a
 *                       blue/green rebuild; `applied` once the runner has done it)
 *   view#<service/view> the table the API reads for a view
 *
 * The `canon` commands write requests; the runner of `canon dev` acts on them and acknowledges.
 */
import { GetCommand, PutCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient } from "../aws/clients.ts";
import { createTableIfMissing } from "../aws/tables.ts";

export const controlTableName = (prefix: string) => `${prefix}-local-control`;

/** Creates the control table if it is missing. */
export async function ensureControlTable(prefix: string): Promise<void> {
  await createTableIfMissing(controlTableName(prefix));
}

async function read(prefix: string, id: string): Promise<Record<string, unknown> | undefined> {
  const result = await dynamoClient().send(
    new GetCommand({ TableName: controlTableName(prefix), Key: { id }, ConsistentRead: true }),
  );
  return result.Item;
}

async function write(prefix: string, item: Record<string, unknown>): Promise<void> {
  await dynamoClient().send(
    new PutCommand({ TableName: controlTableName(prefix), Item: { ...item, updatedAt: new Date().toISOString() } }),
  );
}

/** Lets a warming-up projection's consumer run. */
export async function markAttached(prefix: string, functionId: string): Promise<void> {
  await write(prefix, { id: `attach#${functionId}`, attached: true, running: false });
}

/** The runner's acknowledgement: the attached consumer runs. */
export async function markRunning(prefix: string, functionId: string): Promise<void> {
  await write(prefix, { id: `attach#${functionId}`, attached: true, running: true });
}

export async function isRunning(prefix: string, functionId: string): Promise<boolean> {
  return (await read(prefix, `attach#${functionId}`))?.running === true;
}

/** The warming-up consumers that may run. */
export async function attachedFunctions(prefix: string): Promise<string[]> {
  const result = await dynamoClient().send(
    new ScanCommand({ TableName: controlTableName(prefix), ConsistentRead: true }),
  );
  return (result.Items ?? [])
    .filter((item) => String(item.id).startsWith("attach#") && item.attached === true)
    .map((item) => String(item.id).slice("attach#".length));
}

/** What a projection's consumer is asked to do: write `table`, or stay paused (its queue buffers). */
export interface ConsumerRequest {
  readonly table: string;
  readonly paused: boolean;
  /** The runner has done it. */
  readonly applied: boolean;
}

function toRequest(item: Record<string, unknown>): ConsumerRequest {
  return { table: String(item.table), paused: item.paused === true, applied: item.applied === true };
}

/** The request for a projection's consumer (undefined: none; it writes its planned table). */
export async function consumerTable(prefix: string, functionId: string): Promise<ConsumerRequest | undefined> {
  const item = await read(prefix, `table#${functionId}`);
  return item === undefined ? undefined : toRequest(item);
}

/** Asks the runner to move a projection's consumer to a table, or to pause it. */
export async function setConsumerTable(
  prefix: string,
  functionId: string,
  table: string,
  paused = false,
): Promise<void> {
  await write(prefix, { id: `table#${functionId}`, table, paused, applied: false });
}

/** The runner's acknowledgement: the consumer now does what was asked. */
export async function markConsumerTableApplied(
  prefix: string,
  functionId: string,
  request: ConsumerRequest,
): Promise<void> {
  await write(prefix, { id: `table#${functionId}`, table: request.table, paused: request.paused, applied: true });
}

/** Every consumer request (function id → request). */
export async function consumerTables(prefix: string): Promise<Map<string, ConsumerRequest>> {
  const result = await dynamoClient().send(
    new ScanCommand({ TableName: controlTableName(prefix), ConsistentRead: true }),
  );
  return new Map(
    (result.Items ?? [])
      .filter((item) => String(item.id).startsWith("table#"))
      .map((item) => [String(item.id).slice("table#".length), toRequest(item)]),
  );
}

/**
 * The table the API reads for a view instead of the planned `base` one (undefined: the planned
 * one), and its rebuild generation. A move recorded for another base table no longer applies:
 * the plan has since moved the view itself (a projection generation now serves).
 */
export async function viewTable(
  prefix: string,
  view: string,
  base: string,
): Promise<{ table: string; generation: number } | undefined> {
  const item = await read(prefix, `view#${view}`);
  if (item === undefined || (item.base !== undefined && item.base !== base)) return undefined;
  return { table: String(item.table), generation: Number(item.generation) };
}

/** Records that the API reads `view` from `table` rather than the planned `base`. */
export async function setViewTable(
  prefix: string,
  view: string,
  move: { readonly base: string; readonly table: string; readonly generation: number },
): Promise<void> {
  await write(prefix, { id: `view#${view}`, ...move });
}
