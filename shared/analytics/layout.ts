/**
 * Where the analytics bus's Parquet files sit in its bucket, the same on AWS and locally:
 *
 *   <prefix>dt=<yyyy-MM-dd-HH>/<file>.parquet     one hour partition (UTC) of arrival time
 *
 * On AWS Firehose names the files (`<delivery stream>-<version>-<time>-<uuid>.parquet`); the
 * local sink names each after its batch, `<stream>-<shard>-<first sequence>.parquet`, so writing
 * a batch again replaces its file. The sink's per-shard marker sits outside the prefix:
 *
 *   sink/<stream>/<shardId>.json                   the last sequence number written to a file
 */

/** The hour partition of a time: `dt=2026-12-02-14`. */
export function hourPartition(at: Date): string {
  const iso = at.toISOString();
  return `dt=${iso.slice(0, 10)}-${iso.slice(11, 13)}`;
}

/** The Firehose prefix expression of the same partition (its `!{timestamp:…}` is the arrival hour, UTC). */
export const firehoseHourPrefix = "dt=!{timestamp:yyyy-MM-dd-HH}/";

/** The key of a local sink's file for one batch of a shard. */
export function sinkFileKey(prefix: string, stream: string, shardId: string, arrivedAt: Date, first: string): string {
  return `${prefix}${hourPartition(arrivedAt)}/${stream}-${shardId}-${first}.parquet`;
}

/** The key of a local sink's marker for a shard. */
export function sinkMarkerKey(stream: string, shardId: string): string {
  return `sink/${stream}/${shardId}.json`;
}

/** The hour partitions (`dt=…`) from `since` to `until`, oldest first. */
export function hourPartitionsBetween(since: Date, until: Date): string[] {
  const hour = 3_600_000;
  const partitions: string[] = [];
  for (let t = Math.floor(since.getTime() / hour) * hour; t <= until.getTime(); t += hour) {
    partitions.push(hourPartition(new Date(t)));
  }
  return partitions;
}
