/**
 * The contracts gate's personal data check (docs/privacy.md): every field marked
 * `(canon.privacy.v1.personal)` is a string or bytes field, and names as its subject a string
 * field of the same message. Run by events/check-contracts.sh on the schemas in `<dir>`
 * (default: this folder), from the image `buf build` makes of them.
 */
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { checkMarks } from "../shared/privacy/marks.ts";

const here = dirname(fileURLToPath(import.meta.url));
const dir = process.argv[2] ?? here;
const buf = join(here, "../node_modules/.bin/buf");
const image = execFileSync(buf, ["build", dir, "-o", "-"], { maxBuffer: 64 * 1024 * 1024 });
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, image));
const problems = checkMarks(registry.files);
if (problems.length > 0) {
  for (const problem of problems) console.error(`contracts: ${problem}`);
  process.exit(1);
}
console.log("contracts: personal data marks checked");
