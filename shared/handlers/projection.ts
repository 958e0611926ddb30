/**
 * The projection runtime: events from the service's FIFO queue (raw SNS delivery), applied to
 * the service's own table, exactly once in effect. A projection gets no way to publish (law F):
 * its definition is an `apply` over a table, nothing else.
 */
import { processPartialResponse, SqsFifoPartialProcessorAsync } from "@aws-lambda-powertools/batch";
import { Logger } from "@aws-lambda-powertools/logger";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { SQSHandler, SQSRecord } from "aws-lambda";
import { dynamoClient } from "../aws/clients.ts";
import { isConditionalCheckFailed } from "../aws/errors.ts";
import { type EventEnvelope, parseEvent } from "../events/envelope.ts";

const logger = new Logger({ serviceName: "canon-projection" });

export interface ProjectionDefinition {
  readonly name: string;
  /** Applies one event. Must be idempotent: the runtime delivers at least once. */
  apply(event: EventEnvelope): Promise<void>;
}

/** An SQS (FIFO) Lambda handler that applies each event in order and reports partial failures. */
export function projectionHandler(definition: ProjectionDefinition): SQSHandler {
  const recordHandler = async (record: SQSRecord) => {
    const event = parseEvent(record.body);
    await definition.apply(event);
  };
  return async (event, context) => {
    const processor = new SqsFifoPartialProcessorAsync();
    const response = await processPartialResponse(event, recordHandler, processor, {
      context,
      skipGroupOnError: true,
    });
    for (const failure of processor.errors)
      logger.warn("event not applied", { projection: definition.name, error: failure });
    return response;
  };
}

/** An item of an aggregate-keyed projection: it remembers the aggregate version it reflects. */
export interface VersionedItem {
  readonly id: string;
  readonly version: number;
}

/**
 * Applies one event to the item of its aggregate, once: an event at or below the item's
 * version is a duplicate and changes nothing; the write is conditional on the version read,
 * so a concurrent redelivery cannot apply twice. Returns whether the event was applied.
 */
export async function applyToAggregateItem<Item extends VersionedItem>(
  table: string,
  key: string,
  event: EventEnvelope,
  evolve: (item: Item | undefined) => Item,
): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await dynamoClient().send(
      new GetCommand({ TableName: table, Key: { id: key }, ConsistentRead: true }),
    );
    const item = current.Item as Item | undefined;
    if (item !== undefined && item.version >= event.aggregateversion) return false;
    const next = { ...evolve(item), id: key, version: event.aggregateversion };
    try {
      await dynamoClient().send(
        new PutCommand({
          TableName: table,
          Item: next,
          ConditionExpression: item === undefined ? "attribute_not_exists(id)" : "version = :read",
          ExpressionAttributeValues: item === undefined ? undefined : { ":read": item.version },
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      // Someone applied a newer version meanwhile: read again and re-decide.
    }
  }
  throw new Error(`could not apply ${event.id} to ${key}: the item kept changing`);
}
