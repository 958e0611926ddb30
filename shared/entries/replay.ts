/** A declared projection's warm-up job on AWS (a Step Functions loop of chunks; infra/warm-up.ts). */
import type { ProjectionHandler } from "../handlers/projection.ts";
import { replayerFor } from "../handlers/replayer.ts";

/** The projection's own handler, fed from the archive. */
export function replayLambda(handler: ProjectionHandler) {
  return replayerFor(handler);
}
