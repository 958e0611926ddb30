/**
 * A command schema's validation rules, read from the schema itself and evaluated without a CEL
 * engine: the rules of `events/proto/buf/validate/validate.proto` (Canon's copy of protovalidate's,
 * holding the rules its contracts may use), with protovalidate's semantics and messages.
 *
 * Why: protovalidate's runtime (its CEL interpreter, RE2 engine and the Protobuf reflection they
 * need, ~400 KiB) was most of the API's and every command handler's Lambda bundle. The rules a
 * contract may carry are few and plain: string lengths (in Unicode code points) and a pattern,
 * uint64 bounds, and message CEL rules that compare fields. Each is planned once per message when
 * its command is declared; a rule or a CEL expression outside this set fails that declaration
 * (at module load, naming it), so nothing in a schema is ever silently not enforced.
 * test/unit/command-rules.test.ts holds the verdicts and messages against protovalidate's.
 *
 * Patterns are RE2 in protovalidate; here they are JavaScript regular expressions (`u` flag) with
 * RE2's meaning where the two differ (`.` and `\s`/`\S`); a pattern using syntax whose meaning
 * differs in ways not translated here (lookaround, backreferences, `\b`, flags, classes inside
 * brackets) is refused.
 */
import { type DescField, type DescMessage, getOption, isFieldSet, ScalarType } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import {
  field as fieldRulesOption,
  message as messageRulesOption,
  StringRulesSchema,
} from "../../events/gen/buf/validate/validate_pb.ts";

/** A rule a schema carries that this module cannot evaluate: the command's declaration fails. */
export class UnsupportedRuleError extends Error {
  override name = "UnsupportedRuleError";
  readonly code = "unsupported_rule" as const;
}

/** The first rule a decoded message breaks: the field (JSON name, empty for a message rule) and why. */
export interface RuleViolation {
  readonly field: string;
  readonly message: string;
}

/** Checks a decoded message (protobuf-es shape) against its schema's rules. */
export type MessageRules = (message: Record<string, unknown>) => RuleViolation | undefined;

type Check = (message: Record<string, unknown>) => RuleViolation | undefined;

/** Plans the checks of a message's rules, fields in order, then its message (CEL) rules. */
export function planRules(schema: DescMessage): MessageRules {
  const checks: Check[] = [];
  for (const field of schema.fields) checks.push(...fieldChecks(schema, field));
  const messageRules = getOption(schema, messageRulesOption);
  for (const rule of messageRules.cel) {
    if (rule.message === "")
      throw new UnsupportedRuleError(`${schema.typeName}: CEL rule ${rule.id} has no message (give it one)`);
    const expression = compileCel(schema, rule.expression);
    checks.push((m) => (expression(m) === true ? undefined : { field: "", message: rule.message }));
  }
  return (message) => {
    for (const check of checks) {
      const violation = check(message);
      if (violation !== undefined) return violation;
    }
    return undefined;
  };
}

function fieldChecks(schema: DescMessage, field: DescField): Check[] {
  const where = `${schema.typeName}.${field.name}`;
  const rules = getOption(field, fieldRulesOption);
  if (rules.required) throw new UnsupportedRuleError(`${where}: rule "required" is not evaluated here`);
  const name = field.jsonName;
  const key = field.localName;
  // A field in a oneof or with explicit presence is checked only when set (protovalidate): not here.
  if (
    rules.type.case !== undefined &&
    (field.oneof !== undefined || field.presence !== FeatureSet_FieldPresence.IMPLICIT)
  )
    throw new UnsupportedRuleError(`${where}: rules on a field with presence (optional or in a oneof)`);
  switch (rules.type.case) {
    case undefined:
      return [];
    case "string": {
      if (field.fieldKind !== "scalar" || field.scalar !== ScalarType.STRING)
        throw new UnsupportedRuleError(`${where}: string rules on a field that is not a string`);
      const r = rules.type.value;
      const checks: Check[] = [];
      const minLen = Number(r.minLen);
      if (minLen > 0) {
        const message = `must be at least ${minLen} characters`;
        checks.push((m) => (codePoints(m[key] as string) < minLen ? { field: name, message } : undefined));
      }
      if (isFieldSet(r, StringRulesSchema.field.maxLen)) {
        const maxLen = Number(r.maxLen);
        const message = `must be at most ${maxLen} characters`;
        checks.push((m) => (codePoints(m[key] as string) > maxLen ? { field: name, message } : undefined));
      }
      if (isFieldSet(r, StringRulesSchema.field.pattern)) {
        const pattern = re2AsRegExp(r.pattern, where);
        const message = `does not match regex pattern \`${r.pattern}\``;
        checks.push((m) => (pattern.test(m[key] as string) ? undefined : { field: name, message }));
      }
      return checks;
    }
    case "uint64": {
      if (field.fieldKind !== "scalar" || field.scalar !== ScalarType.UINT64)
        throw new UnsupportedRuleError(`${where}: uint64 rules on a field that is not a uint64`);
      const r = rules.type.value;
      const low = r.greaterThan;
      const high = r.lessThan;
      if (
        low.case !== undefined &&
        high.case !== undefined &&
        !(low.case === "gte" && high.case === "lte" ? high.value >= low.value : high.value > low.value)
      )
        throw new UnsupportedRuleError(`${where}: an exclusive range (a lower bound at or above the upper one)`);
      const above = (v: bigint) => low.case === undefined || (low.case === "gt" ? v > low.value : v >= low.value);
      const below = (v: bigint) => high.case === undefined || (high.case === "lt" ? v < high.value : v <= high.value);
      const message = rangeMessage(low, high);
      if (message === undefined) return [];
      return [(m) => (above(m[key] as bigint) && below(m[key] as bigint) ? undefined : { field: name, message })];
    }
  }
}

type Bound = { case: "gt" | "gte" | "lt" | "lte"; value: bigint } | { case: undefined; value?: undefined };

/** protovalidate's words for a range rule. */
function rangeMessage(low: Bound, high: Bound): string | undefined {
  const words = { gt: "greater than", gte: "greater than or equal to", lt: "less than", lte: "less than or equal to" };
  if (low.case === undefined && high.case === undefined) return undefined;
  if (low.case === undefined) return `must be ${words[high.case as "lt" | "lte"]} ${high.value}`;
  if (high.case === undefined) return `must be ${words[low.case]} ${low.value}`;
  return `must be ${words[low.case]} ${low.value} and ${words[high.case]} ${high.value}`;
}

/** A string's length in Unicode code points (what protovalidate's lengths count). */
function codePoints(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count -= 1;
        i += 1;
      }
    }
  }
  return count;
}

/**
 * An RE2 pattern as a JavaScript RegExp with the same meaning: `.` excludes only `\n` and `\s`
 * is `[\t\n\f\r ]` (RE2's), not JavaScript's wider sets. Syntax this translation does not cover
 * is refused rather than guessed.
 */
export function re2AsRegExp(pattern: string, where: string): RegExp {
  const refuse = (what: string) =>
    new UnsupportedRuleError(`${where}: pattern ${JSON.stringify(pattern)} uses ${what}, not evaluated here`);
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "\\") {
      const e = pattern[i + 1];
      if (e === undefined) throw refuse("a trailing backslash");
      i += 1;
      if (/[0-9bBpPkAzQEC]/.test(e)) throw refuse(`\\${e}`);
      if (e === "s" || e === "S") {
        if (inClass) throw refuse(`\\${e} inside brackets`);
        out += e === "s" ? "[\\t\\n\\f\\r ]" : "[^\\t\\n\\f\\r ]";
      } else {
        out += `\\${e}`;
      }
      continue;
    }
    if (inClass) {
      if (c === "[") throw refuse("a nested class");
      if (c === "]") inClass = false;
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (pattern[i + 1] === "^") {
        out += "^";
        i += 1;
      }
      if (pattern[i + 1] === "]") {
        out += "\\]"; // RE2 (like POSIX) takes a leading `]` as a member
        i += 1;
      }
      continue;
    }
    if (c === "(" && pattern[i + 1] === "?") {
      if (pattern[i + 2] !== ":") throw refuse("a group flag or lookaround");
      out += "(?:";
      i += 2;
      continue;
    }
    out += c === "." ? "[^\\n]" : c;
  }
  if (inClass) throw refuse("an unclosed class");
  try {
    return new RegExp(out, "u");
  } catch (cause) {
    throw new UnsupportedRuleError(`${where}: pattern ${JSON.stringify(pattern)} is not valid here`, { cause });
  }
}

// --- message rules: the CEL that compares a message's fields ---

type Kind = "string" | "int" | "uint" | "bool";
interface Compiled {
  readonly kind: Kind;
  readonly evaluate: (m: Record<string, unknown>) => unknown;
}

/**
 * Compiles a CEL expression over `this` (the message) from a small part of CEL: `this.<field>`
 * of a string, integer or bool field; string, integer (`5`, `5u`) and bool literals; `==` `!=`
 * (same kinds), `<` `<=` `>` `>=` (integers), `!` `&&` `||` (bools) and parentheses. It must be a
 * bool. Anything else is refused, naming it.
 */
export function compileCel(schema: DescMessage, expression: string): (m: Record<string, unknown>) => unknown {
  const refuse = (what: string) =>
    new UnsupportedRuleError(`${schema.typeName}: CEL ${JSON.stringify(expression)}: ${what} is not evaluated here`);
  const tokens = tokenize(expression, refuse);
  let at = 0;
  const peek = () => tokens[at];
  const take = (value?: string) => {
    const token = tokens[at];
    if (token === undefined || (value !== undefined && token.value !== value))
      throw refuse(`expected ${value ?? "more"} at ${token?.value ?? "the end"}`);
    at += 1;
    return token;
  };
  const bool = (c: Compiled, op: string) => {
    if (c.kind !== "bool") throw refuse(`${op} on a ${c.kind}`);
    return c.evaluate;
  };

  const primary = (): Compiled => {
    const token = take();
    if (token.value === "(") {
      const inner = or();
      take(")");
      return inner;
    }
    if (token.type === "string") return { kind: "string", evaluate: () => token.literal };
    if (token.type === "int")
      return { kind: token.value.endsWith("u") ? "uint" : "int", evaluate: () => token.literal };
    if (token.value === "true" || token.value === "false") {
      const value = token.value === "true";
      return { kind: "bool", evaluate: () => value };
    }
    if (token.value === "this") {
      take(".");
      const name = take().value;
      const field = schema.fields.find((f) => f.name === name);
      if (field === undefined || field.fieldKind !== "scalar") throw refuse(`this.${name}`);
      const key = field.localName;
      switch (field.scalar) {
        case ScalarType.STRING:
          return { kind: "string", evaluate: (m) => m[key] };
        case ScalarType.BOOL:
          return { kind: "bool", evaluate: (m) => m[key] };
        case ScalarType.UINT64:
        case ScalarType.UINT32:
        case ScalarType.FIXED64:
        case ScalarType.FIXED32:
          return { kind: "uint", evaluate: (m) => BigInt(m[key] as bigint | number) };
        case ScalarType.INT64:
        case ScalarType.INT32:
        case ScalarType.SINT64:
        case ScalarType.SINT32:
        case ScalarType.SFIXED64:
        case ScalarType.SFIXED32:
          return { kind: "int", evaluate: (m) => BigInt(m[key] as bigint | number) };
        default:
          throw refuse(`a field of type ${ScalarType[field.scalar]}`);
      }
    }
    throw refuse(`"${token.value}"`);
  };
  const unary = (): Compiled => {
    if (peek()?.value === "!") {
      take();
      const operand = bool(unary(), "!");
      return { kind: "bool", evaluate: (m) => !operand(m) };
    }
    return primary();
  };
  const relation = (): Compiled => {
    const left = unary();
    const op = peek()?.value;
    if (op !== "==" && op !== "!=" && op !== "<" && op !== "<=" && op !== ">" && op !== ">=") return left;
    take();
    const right = unary();
    if (left.kind !== right.kind) throw refuse(`${op} between a ${left.kind} and a ${right.kind}`);
    if ((op === "==" || op === "!=") && left.kind === "bool") throw refuse(`${op} between bools`);
    if (op !== "==" && op !== "!=" && left.kind !== "int" && left.kind !== "uint")
      throw refuse(`${op} on ${left.kind}s`);
    const l = left.evaluate;
    const r = right.evaluate;
    const compare = {
      "==": (a: unknown, b: unknown) => a === b,
      "!=": (a: unknown, b: unknown) => a !== b,
      "<": (a: unknown, b: unknown) => (a as bigint) < (b as bigint),
      "<=": (a: unknown, b: unknown) => (a as bigint) <= (b as bigint),
      ">": (a: unknown, b: unknown) => (a as bigint) > (b as bigint),
      ">=": (a: unknown, b: unknown) => (a as bigint) >= (b as bigint),
    }[op];
    return { kind: "bool", evaluate: (m) => compare(l(m), r(m)) };
  };
  const and = (): Compiled => {
    let left = relation();
    while (peek()?.value === "&&") {
      take();
      const l = bool(left, "&&");
      const r = bool(relation(), "&&");
      left = { kind: "bool", evaluate: (m) => l(m) === true && r(m) === true };
    }
    return left;
  };
  const or = (): Compiled => {
    let left = and();
    while (peek()?.value === "||") {
      take();
      const l = bool(left, "||");
      const r = bool(and(), "||");
      left = { kind: "bool", evaluate: (m) => l(m) === true || r(m) === true };
    }
    return left;
  };

  const compiled = or();
  if (at !== tokens.length) throw refuse(`"${tokens[at]?.value}"`);
  return bool(compiled, "the rule's result");
}

interface Token {
  readonly type: "string" | "int" | "word" | "op";
  readonly value: string;
  readonly literal?: string | bigint;
}

function tokenize(expression: string, refuse: (what: string) => Error): Token[] {
  const tokens: Token[] = [];
  const pattern =
    /\s*(?:(==|!=|<=|>=|&&|\|\||[<>!().])|([A-Za-z_][A-Za-z0-9_]*)|(\d+u?)|"([^"\\]*)"|'([^'\\]*)'|(\S))/y;
  for (;;) {
    if (/^\s*$/.test(expression.slice(pattern.lastIndex))) return tokens;
    const match = pattern.exec(expression);
    if (match === null) throw refuse("this expression");
    const [, op, word, int, double, single, other] = match;
    if (other !== undefined) throw refuse(`"${other}"`);
    if (op !== undefined) tokens.push({ type: "op", value: op });
    else if (word !== undefined) tokens.push({ type: "word", value: word });
    else if (int !== undefined) tokens.push({ type: "int", value: int, literal: BigInt(int.replace(/u$/, "")) });
    else tokens.push({ type: "string", value: JSON.stringify(double ?? single), literal: double ?? single ?? "" });
  }
}
