/**
 * Subject keys: one data key per subject, kept wrapped (KeyWrapper) in the subject keys table,
 * one item per subject: `{ id, keyId, wrappedKey, createdAt }` while it lives, and
 * `{ id, erasedAt, erasedBy, erasedFor? }` once erased (the key is gone; the erasure is
 * recorded). A function keeps the keys it read for a bounded time (the TTL), so an erasure
 * reaches every reader within it (docs/privacy.md).
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { dynamoClient } from "../aws/clients.ts";
import { isConditionalCheckFailed } from "../aws/errors.ts";
import { defaultKeyCacheTtlMs, privacyEnv } from "./env.ts";
import type { KeyWrapper } from "./key-wrapper.ts";
import { kmsKeyWrapper } from "./kms-key-wrapper.ts";
import { PersonalDataError } from "./sealed.ts";

/** A subject's key item, as stored. */
export interface SubjectKeyItem {
  readonly id: string;
  readonly keyId?: string;
  /** The data key, wrapped (base64). */
  readonly wrappedKey?: string;
  readonly createdAt?: string;
  readonly erasedAt?: string;
  readonly erasedBy?: string;
  readonly erasedFor?: string;
}

export interface LiveKey {
  readonly keyId: string;
  readonly key: Uint8Array;
}

export interface SubjectKeys {
  /** The subject's key to seal with, made on first use; "erased" once the subject is erased. */
  forSealing(subject: string): Promise<LiveKey | "erased">;
  /** The key a value was sealed under; "erased" if it no longer exists. */
  forOpening(subject: string, keyId: string): Promise<Uint8Array | "erased">;
  /** Drops a subject from this process's cache (on its SubjectErased). */
  forget(subject: string): void;
}

/** Where key items live: the subject keys table (DynamoDB); injectable for tests. */
export interface KeyItemStore {
  /** The subject's item, strongly consistent. */
  read(subject: string): Promise<SubjectKeyItem | undefined>;
  /** Writes a first item; false if the subject has one already. */
  create(item: SubjectKeyItem): Promise<boolean>;
}

/** The subject keys table as a key item store. */
export function dynamoKeyItems(table: string): KeyItemStore {
  return {
    async read(subject) {
      const out = await dynamoClient().send(
        new GetCommand({ TableName: table, Key: { id: subject }, ConsistentRead: true }),
      );
      return out.Item as SubjectKeyItem | undefined;
    },
    async create(item) {
      try {
        await dynamoClient().send(
          new PutCommand({ TableName: table, Item: item, ConditionExpression: "attribute_not_exists(id)" }),
        );
        return true;
      } catch (error) {
        if (isConditionalCheckFailed(error)) return false;
        throw error;
      }
    },
  };
}

export interface SubjectKeysOptions {
  readonly items: KeyItemStore;
  readonly wrapper: KeyWrapper;
  /** How long a key read stays in memory. @default 20000 */
  readonly ttlMs?: number;
  /** Subjects cached at most (the oldest go first). @default 10000 */
  readonly maxEntries?: number;
  /** Injected clock (tests). */
  readonly now?: () => number;
}

interface Cached {
  /** Undefined: the subject is erased, or has no key yet. */
  readonly live: LiveKey | undefined;
  /** Erased: never given a new key. */
  readonly erased: boolean;
  readonly expiresAt: number;
}

export function subjectKeys(options: SubjectKeysOptions): SubjectKeys {
  const ttlMs = options.ttlMs ?? defaultKeyCacheTtlMs;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, Cached>();
  const loading = new Map<string, Promise<LiveKey | undefined>>();

  const remember = (subject: string, live: LiveKey | undefined, erased: boolean) => {
    cache.delete(subject);
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
    cache.set(subject, { live, erased, expiresAt: now() + ttlMs });
    return live;
  };
  const unwrap = async (item: SubjectKeyItem): Promise<LiveKey | undefined> =>
    item.keyId === undefined || item.wrappedKey === undefined
      ? undefined
      : { keyId: item.keyId, key: await options.wrapper.unwrap(item.id, Buffer.from(item.wrappedKey, "base64")) };
  /** The subject's key as stored (undefined: erased or never made), read once for concurrent callers. */
  const load = (subject: string, create: boolean): Promise<LiveKey | undefined> => {
    const hit = cache.get(subject);
    if (hit !== undefined && hit.expiresAt > now() && (hit.live !== undefined || !create || hit.erased))
      return Promise.resolve(hit.live);
    const slot = `${create}|${subject}`;
    const inFlight = loading.get(slot);
    if (inFlight !== undefined) return inFlight;
    const read = (async () => {
      const item = await options.items.read(subject);
      const erased = item?.erasedAt !== undefined;
      if (item !== undefined || !create) return remember(subject, await unwrap(item ?? { id: subject }), erased);
      const made = await createKey(options, subject);
      return remember(subject, made, made === undefined); // undefined: erased while it was made
    })().finally(() => loading.delete(slot));
    loading.set(slot, read);
    return read;
  };
  return {
    async forSealing(subject) {
      return (await load(subject, true)) ?? "erased";
    },
    async forOpening(subject, keyId) {
      const live = await load(subject, false);
      return live !== undefined && live.keyId === keyId ? live.key : "erased";
    },
    forget(subject) {
      cache.delete(subject);
    },
  };
}

/** Makes a subject's first key; if another writer made one first (or erased it), that one stands. */
async function createKey(options: SubjectKeysOptions, subject: string): Promise<LiveKey | undefined> {
  const made = await options.wrapper.generate(subject);
  const keyId = randomBytes(6).toString("base64url");
  const item: SubjectKeyItem = {
    id: subject,
    keyId,
    wrappedKey: Buffer.from(made.wrapped).toString("base64"),
    createdAt: new Date().toISOString(),
  };
  if (await options.items.create(item)) return { keyId, key: made.plaintext };
  const stored = await options.items.read(subject);
  if (stored?.keyId === undefined || stored.wrappedKey === undefined) return undefined;
  return { keyId: stored.keyId, key: await options.wrapper.unwrap(subject, Buffer.from(stored.wrappedKey, "base64")) };
}

/**
 * The local cloud's wrapper (a master key file), loaded only where one is configured: on AWS the
 * functions use KMS, and their bundles never carry the local one (esbuild does not follow this load).
 */
function localKeyWrapper(file: string): KeyWrapper {
  const local = createRequire(import.meta.url)("./key-wrapper.ts") as typeof import("./key-wrapper.ts");
  return local.fileKeyWrapper(file);
}

let fromEnv: { key: string; keys: SubjectKeys } | undefined;

/** The subject keys this function's environment names (one cache per process). */
export function subjectKeysFromEnv(): SubjectKeys {
  const table = process.env[privacyEnv.keysTable];
  const kms = process.env[privacyEnv.kmsKeyId];
  const file = process.env[privacyEnv.masterKeyFile];
  const ttl = Number(process.env[privacyEnv.keyCacheTtlMs] ?? defaultKeyCacheTtlMs);
  if (!table || (!kms && !file))
    throw new PersonalDataError(
      `personal data needs the subject keys: set ${privacyEnv.keysTable} and ${privacyEnv.kmsKeyId} (AWS) or ${privacyEnv.masterKeyFile} (local)`,
    );
  const key = `${table}|${kms ?? ""}|${file ?? ""}|${ttl}`;
  if (fromEnv?.key !== key) {
    const wrapper = kms ? kmsKeyWrapper(kms) : localKeyWrapper(file as string);
    fromEnv = {
      key,
      keys: subjectKeys({
        items: dynamoKeyItems(table),
        wrapper,
        ttlMs: Number.isFinite(ttl) ? ttl : defaultKeyCacheTtlMs,
      }),
    };
  }
  return fromEnv.keys;
}
