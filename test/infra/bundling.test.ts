/**
 * The one test that runs esbuild (the other infra tests skip bundling): a handler is bundled
 * locally, without Docker, as one minified ESM file with a source map, and the AWS SDK is left
 * to the Node.js 24 runtime rather than shipped in the bundle.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { app as definition } from "../../functions/app.ts";
import { bundleDefines, esmRequireBanner, externalModules, mainFields, nodeTarget } from "../../infra/bundling.ts";
import { BusStack } from "../../infra/bus-stack.ts";
import { repoRoot } from "../../infra/canon-function.ts";
import { planApp } from "../../shared/plan.ts";
import { cdkContext, one, resources, tag } from "./support.ts";

describe("bundling", () => {
  it("bundles the relay into one ESM file that imports the SDK from the runtime", async () => {
    const app = new App({ context: cdkContext, builtinCloudFormationValidation: false });
    const stack = new BusStack(app, "Canon-Bus-core", { plan: planApp(definition), bus: "core" });
    const assembly = app.synth();
    const [, fn] = one(
      resources(Template.fromStack(stack).toJSON(), "AWS::Lambda::Function").filter(
        ([, f]) => tag(f, "canon:role") === "relay",
      ),
      "relay",
    );
    const hash = String(fn.Properties.Code.S3Key).replace(/\.zip$/, "");
    const dir = join(assembly.directory, `asset.${hash}`);

    const bundle = readFileSync(join(dir, "index.mjs"), "utf8");
    expect(existsSync(join(dir, "index.mjs.map"))).toBe(true);
    expect(bundle).toMatch(/from\s*"@aws-sdk\/client-sns"/); // imported, not inlined
    expect(bundle).not.toContain("SNSServiceException"); // a class the SNS client would bring along
    expect(bundle.startsWith("import { createRequire }")).toBe(true); // ESM, with a require() for CommonJS deps
    // Issue 14's limit for a stream consumer, and what used to make it 490 KiB: zod, protovalidate.
    const bytes = statSync(join(dir, "index.mjs")).size;
    expect(bytes).toBeLessThan(100 * 1024);
    expect(bundle).not.toContain("ZodError");
    expect(bundle).not.toContain("buf.validate.FieldRules");
    // Only the SDK clients it uses (shared/aws/clients.ts: Kinesis for its telemetry), and S3 only when a claim check is read.
    for (const unused of ["client-ssm", "client-cloudwatch", "client-lambda", "client-sfn"])
      expect(bundle).not.toContain(`@aws-sdk/${unused}`);
    expect(bundle).not.toMatch(/from\s*"@aws-sdk\/client-s3"/);
    expect(bundle).toContain('import("@aws-sdk/client-s3")');
    // The local cloud's tools stay out of what is deployed: fault injection, call counting.
    expect(bundle).not.toContain("injected by CANON_FAULTS");
    expect(bundle).not.toContain("canonCallCounter");
    // The bench measures what is deployed: its build of the same handler with infra/bundling.ts's
    // settings is this bundle, but for the source map's comment.
    const benched = await build({
      entryPoints: [join(repoRoot, "shared/handlers/relay.ts")],
      bundle: true,
      write: false,
      format: "esm",
      platform: "node",
      target: nodeTarget,
      mainFields,
      external: externalModules,
      minify: true,
      banner: { js: esmRequireBanner },
      define: bundleDefines,
      logLevel: "silent",
    });
    expect(Math.abs((benched.outputFiles[0]?.contents.byteLength ?? 0) - bytes)).toBeLessThan(200);
  });
});
