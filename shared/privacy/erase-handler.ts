/**
 * Lambda entry of the erase route on AWS (infra/privacy.ts): an HTTP API route with IAM
 * authorisation, so only a principal allowed `execute-api:Invoke` on it can erase, and the
 * erasure records that principal. Its environment names the keys table and the buses.
 */
import type { APIGatewayProxyEventV2WithIAMAuthorizer, APIGatewayProxyResultV2 } from "aws-lambda";
import { requireEnv } from "../env.ts";
import { privacyEnv } from "./env.ts";
import type { EraseTarget } from "./erase.ts";
import { answerErase } from "./erase-api.ts";

/** JSON: the buses' `{ bus, streamName, archiveBucket }`. */
export const eraseTargetsEnv = "CANON_ERASE_TARGETS";

export async function handler(event: APIGatewayProxyEventV2WithIAMAuthorizer): Promise<APIGatewayProxyResultV2> {
  const subject = decodeURIComponent(event.pathParameters?.subject ?? "");
  const body =
    event.body === undefined ? "" : event.isBase64Encoded ? Buffer.from(event.body, "base64").toString() : event.body;
  const answer = await answerErase({
    subject,
    body,
    by:
      event.requestContext.authorizer.iam.userArn ?? event.requestContext.authorizer.iam.userId ?? "unknown principal",
    keysTable: requireEnv(privacyEnv.keysTable),
    buses: JSON.parse(requireEnv(eraseTargetsEnv)) as EraseTarget[],
  });
  return {
    statusCode: answer.status,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(answer.body),
  };
}
