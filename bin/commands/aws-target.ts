/**
 * Reaching the deployed app from a `canon` command (`console --aws`, `status --aws`): the
 * region from `--region` or the environment, and one look at the account before anything
 * else, so missing credentials, denied access or an app not deployed there fail at once with
 * the reason rather than as warnings later.
 */
import type { AwsConsoleSource } from "../../shared/console/aws-source.ts";
import { isCanonError } from "../../shared/errors.ts";

/** Whether `error` is an `AwsTargetError` (by its code), with its exit status. */
export function isAwsTargetError(error: unknown): error is AwsTargetError {
  return isCanonError(error, "aws_target");
}

/** Why the deployed app cannot be read, and the exit status that says so (2 usage, 1 the account). */
export class AwsTargetError extends Error {
  override name = "AwsTargetError";
  readonly code = "aws_target" as const;
  readonly exitCode: 1 | 2;
  constructor(message: string, exitCode: 1 | 2) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The app's region: `--region`, else AWS_REGION or AWS_DEFAULT_REGION; set for the SDK. */
export function awsRegion(flag: string | undefined): string {
  const region = flag ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (region === undefined) throw new AwsTargetError("no region: pass --region or set AWS_REGION", 2);
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new AwsTargetError(`"${region}" is not an AWS region name`, 2);
  process.env.AWS_REGION = region;
  return region;
}

/** The console's AWS source over the app of functions/app.ts deployed in `region`, after one look at the account. */
export async function openAwsSource(
  region: string,
  options: { readonly onMissing?: (missing: readonly string[]) => void } = {},
): Promise<{ source: AwsConsoleSource; prefix: string }> {
  const { app } = await import("../../functions/app.ts");
  const { planApp } = await import("../../shared/plan.ts");
  const { discoverDeployedApp } = await import("../../shared/console/aws-discovery.ts");
  const plan = planApp(app);
  let deployed: Awaited<ReturnType<typeof discoverDeployedApp>>;
  try {
    deployed = await discoverDeployedApp(plan, region);
  } catch (error) {
    throw new AwsTargetError(`cannot read the account: ${(error as Error).name}: ${(error as Error).message}`, 1);
  }
  if (deployed.functions.size === 0) {
    throw new AwsTargetError(
      `no function tagged canon:app=${plan.prefix} in ${region}: is the app deployed there (npx cdk deploy --all)?`,
      1,
    );
  }
  if (deployed.missing.length > 0) options.onMissing?.(deployed.missing);
  const { awsConsoleSource } = await import("../../shared/console/aws-source.ts");
  return { source: awsConsoleSource({ app, plan, region }), prefix: plan.prefix };
}
