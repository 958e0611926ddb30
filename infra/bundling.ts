/**
 * How a Lambda handler is bundled: the one set of esbuild settings that `CanonFunction`
 * (infra/canon-function.ts) gives CDK and that the benchmark (bench/bundles.ts) builds with, so
 * the sizes and init times it reports are those of what is deployed.
 *
 * - ESM for Node.js 24, minified, with a source map (outside the bundle's size);
 * - `@aws-sdk/*` external: the Lambda runtime ships SDK v3, and a function loads only the
 *   clients it asks for (shared/aws/clients.ts);
 * - `module` before `main`, so dependencies' ESM builds are tree-shaken;
 * - the local cloud's tools left out (`bundleDefines`).
 */

/** Packages left to the runtime, not bundled. */
export const externalModules = ["@aws-sdk/*"];

/** Some CommonJS dependencies still call require(); give the ESM bundle one. */
export const esmRequireBanner =
  "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

/** Fields of a dependency's package.json read for its entry point, in order. */
export const mainFields = ["module", "main"];

/** The Node.js version bundles are built for (the functions' runtime). */
export const nodeTarget = "node24";

/** The functions' NODE_OPTIONS: stack traces through the source map. */
export const deployedNodeOptions = "--enable-source-maps";

/**
 * Compile-time constants of a Lambda bundle: `process.env.CANON_BUNDLE` is "lambda", so the code
 * that only the local cloud uses (SDK fault injection, call counting, the in-process wake-up of
 * stream readers; shared/aws/clients.ts) folds away with the modules it imports.
 */
export const bundleDefines: Record<string, string> = { "process.env.CANON_BUNDLE": JSON.stringify("lambda") };
