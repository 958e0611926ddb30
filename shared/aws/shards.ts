import type { Shard } from "@aws-sdk/client-kinesis";
import { kinesisClient } from "./clients.ts";

/** Every shard of a stream, open and closed, across ListShards pages. */
export async function listShards(streamName: string): Promise<Shard[]> {
  // Loaded on first use: a projection's replayer asks only in a warm-up job.
  const { ListShardsCommand } = await import("@aws-sdk/client-kinesis");
  const shards: Shard[] = [];
  let token: string | undefined;
  do {
    const page = await kinesisClient().send(
      new ListShardsCommand(token ? { NextToken: token } : { StreamName: streamName }),
    );
    shards.push(...(page.Shards ?? []));
    token = page.NextToken;
  } while (token);
  return shards;
}
