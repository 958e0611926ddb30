/**
 * A scratch copy of the repository for tests that write into it (`canon add`): the folders a
 * test changes are copied, the rest linked in, and a tsconfig type-checks its functions/ and
 * test/unit. Made before the tests (beforeAll), removed after them (afterAll).
 */
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { repoRoot } from "./system.ts";

export function useScratchRepo(
  prefix: string,
  parts: { readonly copied: readonly string[]; readonly linked: readonly string[] },
): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  beforeAll(() => {
    for (const copied of parts.copied) cpSync(join(repoRoot, copied), join(root, copied), { recursive: true });
    for (const linked of parts.linked) symlinkSync(join(repoRoot, linked), join(root, linked));
    writeFileSync(
      join(root, "tsconfig.json"),
      JSON.stringify({ extends: join(repoRoot, "tsconfig.json"), include: ["functions", "test/unit"] }),
    );
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  return root;
}
