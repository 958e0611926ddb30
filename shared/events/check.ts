/**
 * Checks for Canon's own JSON shapes (the commit, the event envelope, the claim check, the
 * command message): plain functions over what `JSON.parse` returned, checked in place (no copy
 * unless an object carries keys the shape does not know, which are dropped as before).
 *
 * Why not a schema library: these run for every record on every hop (decoding a commit is the
 * relay's and every projection's hot path), and zod's 440 KiB (it is not tree-shaken) was most
 * of each of those Lambda bundles, and its copy of every object most of a decode. The shapes
 * are fixed and few; test/unit/envelope-check.test.ts holds these checks against the zod schemas
 * they replace, so what is accepted and refused stays the same.
 */

/** Where a value was refused (`events.0.aggregateversion`) and why. */
export interface Issue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** A parse that does not throw: the value, or the first thing wrong with it (zod's shape). */
export type SafeParse<T> =
  | { readonly success: true; readonly data: T }
  | { readonly success: false; readonly error: { readonly issues: readonly Issue[] } };

/** A shape to check a parsed JSON value against. */
export interface Shape<T> {
  safeParse(value: unknown): SafeParse<T>;
}

/** Thrown inside a check: the first issue found. */
export class ShapeError extends Error {
  override name = "ShapeError";
  readonly code = "shape" as const;
  readonly path: (string | number)[];
  constructor(path: (string | number)[], message: string) {
    super(message);
    this.path = path;
  }
}

/** A shape from a checking function that throws `ShapeError` (and returns the value to keep). */
export function shape<T>(check: (value: unknown) => T): Shape<T> {
  return {
    safeParse(value) {
      try {
        return { success: true, data: check(value) };
      } catch (error) {
        if (!(error instanceof ShapeError)) throw error;
        return { success: false, error: { issues: [{ path: error.path, message: error.message }] } };
      }
    },
  };
}

/** A JSON object (not null, not an array), as `Record`. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `o[key]` as a string of `min`..`max` characters (UTF-16 code units, as zod counted). */
export function text(o: Record<string, unknown>, key: string, min: number, max: number): string {
  const value = o[key];
  if (typeof value !== "string") throw new ShapeError([key], `expected string, received ${typeName(value)}`);
  if (value.length < min) throw new ShapeError([key], `expected string to have >=${min} characters`);
  if (value.length > max) throw new ShapeError([key], `expected string to have <=${max} characters`);
  return value;
}

/** Like `text`, but absent (undefined) is fine. */
export function optionalText(o: Record<string, unknown>, key: string, min: number, max: number): string | undefined {
  return o[key] === undefined ? undefined : text(o, key, min, max);
}

/** `o[key]` as a safe integer ≥ `min`. */
export function integer(o: Record<string, unknown>, key: string, min: number): number {
  const value = o[key];
  if (typeof value !== "number") throw new ShapeError([key], `expected number, received ${typeName(value)}`);
  if (!Number.isSafeInteger(value)) throw new ShapeError([key], "expected int, received number");
  if (value < min) throw new ShapeError([key], `expected number to be >=${min}`);
  return value;
}

/** `o[key]` must be exactly `expected`. */
export function literal(o: Record<string, unknown>, key: string, expected: string): void {
  if (o[key] !== expected) throw new ShapeError([key], `expected "${expected}"`);
}

/** Runs `check` with `prefix` put before the path of what it refuses. */
export function within<T>(prefix: readonly (string | number)[], check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof ShapeError) error.path.unshift(...prefix);
    throw error;
  }
}

/**
 * `o` keeping only `keys`: `o` itself when it has no other key (the common case, no copy),
 * else a copy without the others (as zod's `object` dropped them).
 */
export function onlyKeys<T>(o: Record<string, unknown>, keys: ReadonlySet<string>): T {
  let known = 0;
  let all = 0;
  for (const key in o) {
    all += 1;
    if (keys.has(key)) known += 1;
  }
  if (known === all) return o as T;
  const kept: Record<string, unknown> = {};
  for (const key in o) if (keys.has(key)) kept[key] = o[key];
  return kept as T;
}

/** Refuses `o` if it has a key outside `keys` (a strict shape). */
export function noOtherKeys(o: Record<string, unknown>, keys: ReadonlySet<string>): void {
  for (const key in o) if (!keys.has(key)) throw new ShapeError([], `unrecognized key: "${key}"`);
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}
