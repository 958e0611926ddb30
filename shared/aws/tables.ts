/** Table housekeeping for the local cloud and its tools: every Canon table is keyed by one string. */
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient } from "./clients.ts";
import { isAwsError } from "./errors.ts";

async function withDynamo<T>(run: (dynamo: DynamoDBClient) => Promise<T>): Promise<T> {
  const dynamo = new DynamoDBClient({ region: process.env.AWS_REGION ?? "us-east-1" });
  try {
    return await run(dynamo);
  } finally {
    dynamo.destroy();
  }
}

/** Creates an on-demand table keyed by `partitionKey` (a string) unless it exists. */
export async function createTableIfMissing(name: string, partitionKey = "id"): Promise<void> {
  await withDynamo(async (dynamo) => {
    try {
      await dynamo.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [{ AttributeName: partitionKey, AttributeType: "S" }],
          KeySchema: [{ AttributeName: partitionKey, KeyType: "HASH" }],
        }),
      );
    } catch (error) {
      if (!isAwsError(error, "ResourceInUseException")) throw error;
    }
  });
}

/** Deletes a table. */
export async function deleteTable(name: string): Promise<void> {
  await withDynamo((dynamo) => dynamo.send(new DeleteTableCommand({ TableName: name })));
}

/** Every item of a table, by id, across Scan pages (for tools, tests and the bench: it reads it all). */
export async function scanItems(table: string): Promise<Map<string, Record<string, unknown>>> {
  const items = new Map<string, Record<string, unknown>>();
  let key: Record<string, unknown> | undefined;
  do {
    const page = await dynamoClient().send(new ScanCommand({ TableName: table, ExclusiveStartKey: key }));
    for (const item of page.Items ?? []) items.set(String(item.id), item);
    key = page.LastEvaluatedKey;
  } while (key !== undefined);
  return items;
}
