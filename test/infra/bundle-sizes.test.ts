/**
 * Issue 14's bundle limits, held for every planned handler as it is bundled for Lambda
 * (infra/bundling.ts, through the bench's own build, bench/bundles.ts): at most 150 KiB, and
 * 100 KiB for projections, the relay and the archiver, which carry neither the command
 * validator (protobuf-es) nor the HTTP framework (Hono). The bench prints what is in each.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildBundle, bundleTargets, kibTargetFor, largestInputs, plannedEntries } from "../../bench/bundles.ts";
import { app } from "../../functions/app.ts";
import { repoRoot } from "../../infra/canon-function.ts";
import { planApp } from "../../shared/plan.ts";

const outdir = mkdtempSync(join(tmpdir(), "canon-bundles-"));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

const handlers = new Map(plannedEntries(planApp(app), repoRoot).map(({ fn, entry }) => [entry, fn] as const));

describe("Lambda bundles", () => {
  for (const [handler, fn] of handlers) {
    it(`${fn.id} (${fn.role}) stays within ${kibTargetFor(fn.role, fn.id)} KiB`, async () => {
      const outfile = join(outdir, `${fn.id}.mjs`);
      const { metafile } = await buildBundle(repoRoot, handler, outfile);
      const kib = statSync(outfile).size / 1024;
      const largest = largestInputs(metafile, handler, 4)
        .map((i) => `${i.name} ${i.kib} KiB`)
        .join(", ");
      expect(kib, `${fn.id}: ${kib.toFixed(1)} KiB; largest: ${largest}`).toBeLessThanOrEqual(
        kibTargetFor(fn.role, fn.id),
      );
      const inputs = Object.keys(metafile.inputs);
      // The local cloud's tools (infra/bundling.ts's defines fold them away) carry no byte into a bundle.
      const localOnly = Object.values(metafile.outputs).flatMap((o) =>
        Object.entries(o.inputs).flatMap(([path, i]) =>
          i.bytesInOutput > 0 &&
          /shared\/(aws\/(call-counter|sdk-faults)|runner\/(faults|stream-signal))\.ts$/.test(path)
            ? [path]
            : [],
        ),
      );
      expect(localOnly, fn.id).toEqual([]);
      expect(inputs.some((p) => p.includes("node_modules/zod/"))).toBe(false);
      expect(inputs.some((p) => p.includes("node_modules/@bufbuild/protovalidate/"))).toBe(false);
      if (bundleTargets.consumerRoles.includes(fn.role)) {
        expect(inputs.some((p) => p.includes("node_modules/@bufbuild/protobuf/"))).toBe(false);
        expect(inputs.some((p) => p.includes("node_modules/hono/"))).toBe(false);
      }
    });
  }
});
