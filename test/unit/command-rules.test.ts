/**
 * Command validation (shared/domain/commands.ts with shared/domain/rules.ts) answers what
 * protovalidate answers: every command of every contract, fed payloads built from values at and
 * around each rule's edges (lengths in code points, RE2's `\s` and `.`, uint64 bounds and the
 * JSON mapping's strings), gets the same verdict and the same message as protovalidate's
 * validator on the same decoded message. Rules and CEL outside what rules.ts evaluates are refused.
 */
import { create, type DescMessage, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RequestTransferSchema } from "../../events/gen/canon/bank/transfers/v1/transfers_pb.ts";
import { app } from "../../functions/app.ts";
import { type CommandSpecs, contractsOf, validateCommand } from "../../shared/domain/commands.ts";
import { compileCel, re2AsRegExp, UnsupportedRuleError } from "../../shared/domain/rules.ts";

const validator = createValidator();
const contracts = contractsOf(app);

/** What validateCommand answered when protovalidate validated (the code before rules.ts). */
function reference(specs: CommandSpecs, name: string, payload: Record<string, unknown>) {
  const spec = specs[name];
  if (spec === undefined) throw new Error(name);
  let message: ReturnType<typeof fromJson>;
  try {
    message = fromJson(spec.schema, payload as JsonValue);
  } catch {
    return { decoded: false as const };
  }
  const result = validator.validate(spec.schema, message);
  if (result.kind === "error") throw result.error;
  if (result.kind === "valid") return { decoded: true as const, ok: true };
  const violation = result.violations[0];
  const field = violation?.field.map((f) => ("jsonName" in f ? f.jsonName : String(f))).join(".");
  return { decoded: true as const, ok: false, error: `${field || "(body)"}: ${violation?.message ?? "invalid"}` };
}

const strings = fc.oneof(
  fc.constantFrom(
    "",
    "a",
    "acct-1",
    "a.b_c-D9",
    "a b",
    " ",
    "\u00a0",
    "\u2003",
    "\u000b",
    "\t",
    "x\n",
    "\n",
    "é",
    "😀",
    "a😀",
    "\u2028",
    "-",
    "..",
    "$",
    "a".repeat(64),
    "a".repeat(65),
    "😀".repeat(64),
    "😀".repeat(65),
    "r".repeat(500),
    "r".repeat(501),
    "😀".repeat(500),
    "é".repeat(501),
  ),
  fc.string({ maxLength: 6 }),
  fc.string({ unit: "grapheme", maxLength: 4 }),
);

const amounts = fc.oneof(
  fc.constantFrom(
    0,
    1,
    2,
    9007199254740991,
    "9007199254740991",
    "9007199254740992",
    "18446744073709551615",
    "1",
    " 5",
    "0",
  ),
  fc.integer({ min: 0, max: 2 ** 53 - 1 }),
);

/** A payload for a command: each field from the pools above, sometimes missing, sometimes a copy of another. */
function payloads(schema: DescMessage) {
  const fields = schema.fields.map((field) => {
    const value = field.fieldKind === "scalar" && field.scalar === 4 ? amounts : strings; // 4: UINT64
    return fc.option(value, { nil: undefined, freq: 8 }).map((v) => [field.jsonName, v] as const);
  });
  return fc.tuple(...fields, fc.boolean()).map((entries) => {
    const sameIds = entries.at(-1) as boolean;
    const payload: Record<string, unknown> = {};
    for (const entry of entries.slice(0, -1) as (readonly [string, unknown])[]) {
      if (entry[1] !== undefined) payload[entry[0]] = entry[1];
    }
    // Often make two id fields equal, so a CEL rule comparing them meets both outcomes.
    if (sameIds && typeof payload.fromAccountId === "string") payload.toAccountId = payload.fromAccountId;
    return payload;
  });
}

describe("command validation agrees with protovalidate", () => {
  for (const [service, specs] of Object.entries(contracts)) {
    for (const [name, spec] of Object.entries(specs)) {
      it(`${service}.${name}`, () => {
        fc.assert(
          fc.property(payloads(spec.schema), (payload) => {
            const expected = reference(specs, name, payload);
            if (!expected.decoded) return; // refused by the JSON mapping, before any rule: the same code path
            const got = validateCommand(specs, name, payload);
            expect(got.ok, JSON.stringify(payload)).toBe(expected.ok);
            if (!got.ok) expect(got.error, JSON.stringify(payload)).toBe(expected.error);
          }),
          { seed: 14, numRuns: 1500 },
        );
      });
    }
  }
});

describe("rules outside what rules.ts evaluates", () => {
  it("refuse RE2 syntax whose meaning would differ, and translate `.` and `\\s` to RE2's", () => {
    for (const pattern of ["(?i)abc", "(?=a)", "\\bword", "\\1", "\\pL", "[\\s]", "[[:alpha:]]"]) {
      expect(() => re2AsRegExp(pattern, "t"), pattern).toThrow(UnsupportedRuleError);
    }
    expect(re2AsRegExp("^.$", "t").test("\u2028")).toBe(true); // RE2's `.` excludes only \n
    expect(re2AsRegExp("^.$", "t").test("\n")).toBe(false);
    expect(re2AsRegExp("\\S", "t").test("\u00a0")).toBe(true); // RE2's \s is ASCII whitespace
    expect(re2AsRegExp("^\\s$", "t").test("\u000b")).toBe(false);
    expect(re2AsRegExp("^(?:ab)+$", "t").test("abab")).toBe(true);
  });

  it("refuse CEL beyond field comparisons, naming the expression", () => {
    const check = (expression: string) => () => compileCel(RequestTransferSchema, expression);
    expect(check("size(this.transfer_id) > 0")).toThrow(/size.*not evaluated here/);
    expect(check("this.transfer_id.startsWith('a')")).toThrow(UnsupportedRuleError);
    expect(check("this.amount_cents > 'a'")).toThrow(/between a uint and a string/);
    expect(check("this.transfer_id < this.from_account_id")).toThrow(/< on strings/);
    expect(check("this.transfer_id")).toThrow(/result on a string/);
    expect(check("this.nope == 1")).toThrow(/this\.nope/);
  });

  it("evaluate what they accept as CEL does", () => {
    const message = create(RequestTransferSchema, {
      transferId: "t",
      fromAccountId: "a",
      toAccountId: "b",
      amountCents: 5n,
    }) as unknown as Record<string, unknown>;
    const run = (expression: string) => compileCel(RequestTransferSchema, expression)(message);
    expect(run("this.to_account_id != this.from_account_id")).toBe(true);
    expect(run("this.amount_cents > 4u && this.amount_cents <= 5u")).toBe(true);
    expect(run("!(this.transfer_id == 't') || false")).toBe(false);
    expect(run('this.from_account_id == "a" && (this.amount_cents < 5u || true)')).toBe(true);
  });
});
