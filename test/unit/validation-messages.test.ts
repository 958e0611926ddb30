/**
 * A command the Protobuf JSON mapping refuses is answered in the user's words: the field, the
 * rule it breaks, the value sent — for each kind of decode error. (Rule violations keep
 * protovalidate's messages: test/unit/command-rules.test.ts.)
 */
import { FieldSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { accountContract } from "../../functions/accounts/contract.ts";
import { type CommandSpecs, validateCommand } from "../../shared/domain/commands.ts";

const accountCommands = accountContract.commands;

const errorOf = (specs: CommandSpecs, name: string, payload: unknown) => {
  const result = validateCommand(specs, name, payload);
  if (result.ok) throw new Error(`${JSON.stringify(payload)} was accepted`);
  expect(result.status).toBe(400);
  return result.error;
};
const deposit = (payload: Record<string, unknown>) => errorOf(accountCommands, "Deposit", payload);

// google.protobuf.Field has the field types the bank's commands lack (an enum, int32, bool).
const fieldSpecs: CommandSpecs = { Field: { schema: FieldSchema, rules: () => undefined, aggregateId: () => "x" } };
const field = (payload: Record<string, unknown>) => errorOf(fieldSpecs, "Field", payload);

describe("decode errors in the user's words", () => {
  it("out of range", () => {
    expect(deposit({ accountId: "a", amountCents: -5 })).toBe(
      "amountCents: must be a whole number from 0 to 18446744073709551615; got -5",
    );
    expect(deposit({ accountId: "a", amountCents: "18446744073709551616" })).toBe(
      'amountCents: must be a whole number from 0 to 18446744073709551615; got "18446744073709551616"',
    );
    expect(field({ number: 2 ** 31 })).toBe(
      "number: must be a whole number from -2147483648 to 2147483647; got 2147483648",
    );
  });

  it("not an integer", () => {
    expect(deposit({ accountId: "a", amountCents: 1.5 })).toBe(
      "amountCents: must be a whole number, without a fraction; got 1.5",
    );
    expect(field({ number: "2.5" })).toBe('number: must be a whole number, without a fraction; got "2.5"');
  });

  it("wrong type", () => {
    expect(deposit({ accountId: "a", amountCents: "abc" })).toBe('amountCents: must be a whole number; got "abc"');
    expect(deposit({ accountId: "a", amountCents: true })).toBe("amountCents: must be a whole number; got true");
    expect(deposit({ accountId: "a", amountCents: "" })).toBe('amountCents: must be a whole number; got ""');
    expect(deposit({ accountId: 5, amountCents: 1 })).toBe("accountId: must be text; got 5");
    expect(deposit({ accountId: ["x"], amountCents: 1 })).toBe('accountId: must be text; got ["x"]');
    expect(deposit({ account_id: { id: "x" }, amountCents: 1 })).toBe('accountId: must be text; got {"id":"x"}');
    expect(field({ packed: "yes" })).toBe('packed: must be true or false; got "yes"');
  });

  it("unknown field", () => {
    expect(deposit({ accountId: "a", amountCents: 5, extra: true })).toBe(
      "extra: not a field of Deposit (its fields: accountId, amountCents); got true",
    );
  });

  it("bad enum", () => {
    expect(field({ kind: "TYPE_NOPE" })).toMatch(
      /^kind: must be one of TYPE_UNKNOWN, TYPE_DOUBLE, .*, TYPE_SINT64; got "TYPE_NOPE"$/,
    );
    expect(field({ kind: "TYPE_STRING", cardinality: "SOMETIMES" })).toMatch(
      /^cardinality: must be one of CARDINALITY_UNKNOWN, .*; got "SOMETIMES"$/,
    );
    expect(validateCommand(fieldSpecs, "Field", { kind: "TYPE_STRING", cardinality: 1 }).ok).toBe(true);
  });

  it("shortens a long value", () => {
    expect(deposit({ accountId: "a", amountCents: "x".repeat(100) })).toBe(
      `amountCents: must be a whole number; got "${"x".repeat(38)}…`,
    );
  });
});
