/**
 * Code in docs is real code: every block of docs/add-a-projection.md marked
 * `<!-- verbatim: <file> -->` is a verbatim excerpt of that file, so the walkthrough cannot
 * drift from the projection it shows (which the type check and the tests cover).
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const repoRoot = resolve(import.meta.dirname, "../..");

const doc = "docs/add-a-projection.md";

/** The marked blocks of a Markdown file: the file each names and the code. */
function verbatimBlocks(markdown: string): { file: string; code: string }[] {
  const pattern = /<!-- verbatim: (\S+) -->\n```ts\n([\s\S]*?)```/g;
  return [...markdown.matchAll(pattern)].map((m) => ({ file: m[1] as string, code: m[2] as string }));
}

describe(doc, () => {
  it("shows the projection's code as it is in the repository", () => {
    const blocks = verbatimBlocks(readFileSync(join(repoRoot, doc), "utf8"));
    expect(blocks.length).toBeGreaterThan(0);
    for (const { file, code } of blocks) expect(readFileSync(join(repoRoot, file), "utf8"), file).toContain(code);
  });
});
