/** Table housekeeping for the local cloud and its tools: every Canon table is keyed by one string. */
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";

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
      if (!(error instanceof Error && error.name === "ResourceInUseException")) throw error;
    }
  });
}

/** Deletes a table. */
export async function deleteTable(name: string): Promise<void> {
  await withDynamo((dynamo) => dynamo.send(new DeleteTableCommand({ TableName: name })));
}
