/**
 * The docs' walkthrough code compiles: every ```ts block of README.md, docs/architecture.md and
 * docs/add-a-projection.md marked `<!-- compile: <path> -->` is type-checked with the kit as it
 * is, as if it were the file at <path> (a new file beside the real ones), so an example cannot
 * drift from the API. (Blocks marked `verbatim` are excerpts of real files:
 * test/unit/projection-batch-docs.test.ts.)
 */
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../support/system.ts";

const docs = ["README.md", "docs/architecture.md", "docs/add-a-projection.md"];

/** The marked blocks of a Markdown file: the path each is checked as, and the code. */
function compiledBlocks(markdown: string): { path: string; code: string }[] {
  const pattern = /<!-- compile: (\S+) -->\n```ts\n([\s\S]*?)```/g;
  return [...markdown.matchAll(pattern)].map((m) => ({ path: m[1] as string, code: m[2] as string }));
}

const root = mkdtempSync(join(tmpdir(), "canon-docs-code-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A shadow of the repository: the kit linked in, functions/ as folders of linked files. */
function shadow(): void {
  for (const linked of ["shared", "events", "node_modules", "package.json"]) {
    symlinkSync(join(repoRoot, linked), join(root, linked));
  }
  const functions = join(repoRoot, "functions");
  for (const entry of readdirSync(functions, { withFileTypes: true })) {
    const at = join(root, "functions", entry.name);
    if (!entry.isDirectory()) {
      mkdirSync(dirname(at), { recursive: true });
      symlinkSync(join(functions, entry.name), at);
      continue;
    }
    mkdirSync(at, { recursive: true });
    for (const file of readdirSync(join(functions, entry.name)))
      symlinkSync(join(functions, entry.name, file), join(at, file));
  }
}

describe("the docs' code", () => {
  it("type-checks every block marked for compilation", () => {
    shadow();
    const blocks = docs.flatMap((doc) =>
      compiledBlocks(readFileSync(join(repoRoot, doc), "utf8")).map((block) => ({ ...block, doc })),
    );
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const { path, code, doc } of blocks) {
      expect(existsSync(join(repoRoot, path)), `${doc}: ${path} is a real file; name a new one`).toBe(false);
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), code);
    }
    writeFileSync(
      join(root, "tsconfig.json"),
      JSON.stringify({ extends: join(repoRoot, "tsconfig.json"), include: blocks.map((b) => b.path) }),
    );
    const tsc = join(repoRoot, "node_modules/typescript/bin/tsc");
    try {
      execFileSync(process.execPath, [tsc, "-p", root], { cwd: root, encoding: "utf8", timeout: 120_000 });
    } catch (error) {
      throw new Error(`the docs' code does not type-check:\n${(error as { stdout?: string }).stdout ?? error}`);
    }
  }, 150_000);
});
