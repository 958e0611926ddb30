/**
 * A sealed value: one personal field encrypted with its subject's data key (AES-256-GCM), as
 * the text that replaces it in an event's data:
 *
 *     pd1.<kind>.<subject, base64url>.<key id>.<iv | ciphertext | tag, base64url>
 *
 * `kind` is `s` (a string field) or `b` (bytes), so an erased field reads as its kind's marker.
 * The header (everything before the payload) is the cipher's additional data: a sealed value
 * moved to another subject or key fails authentication like an altered one.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const prefix = "pd1.";
const ivBytes = 12;
const tagBytes = 16;

/** What a marked string field reads as once its subject is erased. */
export const erasedText = "[erased]";

export type FieldKind = "s" | "b";

/** What an erased field reads as: the marker for a string, empty bytes for bytes. */
export const erasedValue = (kind: FieldKind): string => (kind === "s" ? erasedText : "");

/** Thrown when a sealed value cannot be read: altered, malformed, or sealed under another key. */
export class PersonalDataError extends Error {
  override name = "PersonalDataError";
  readonly code = "personal_data" as const;
}

export interface SealedHeader {
  readonly kind: FieldKind;
  readonly subject: string;
  readonly keyId: string;
}

export function isSealed(value: unknown): value is string {
  return typeof value === "string" && value.startsWith(prefix);
}

/** Encrypts a field's JSON value (its text) for a subject under one of its data keys. */
export function sealValue(header: SealedHeader, key: Uint8Array, plaintext: string): string {
  const head = `${prefix}${header.kind}.${Buffer.from(header.subject).toString("base64url")}.${header.keyId}`;
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(head));
  const body = Buffer.concat([iv, cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
  return `${head}.${body.toString("base64url")}`;
}

/** Reads a sealed value's header (which subject, which key) without decrypting it. */
export function sealedHeader(sealed: string): SealedHeader {
  const parts = sealed.split(".");
  const [tag, kind, subject, keyId, body] = parts;
  if (parts.length !== 5 || `${tag}.` !== prefix || (kind !== "s" && kind !== "b") || !subject || !keyId || !body)
    throw new PersonalDataError("not a sealed value (expected pd1.<kind>.<subject>.<key id>.<payload>)");
  return { kind, subject: Buffer.from(subject, "base64url").toString("utf8"), keyId };
}

/** Decrypts a sealed value with its data key; throws `PersonalDataError` if it was altered. */
export function openValue(sealed: string, key: Uint8Array): string {
  sealedHeader(sealed);
  const cut = sealed.lastIndexOf(".");
  const body = Buffer.from(sealed.slice(cut + 1), "base64url");
  if (body.length < ivBytes + tagBytes) throw new PersonalDataError("sealed value is truncated");
  const decipher = createDecipheriv("aes-256-gcm", key, body.subarray(0, ivBytes));
  decipher.setAAD(Buffer.from(sealed.slice(0, cut)));
  decipher.setAuthTag(body.subarray(body.length - tagBytes));
  try {
    return Buffer.concat([decipher.update(body.subarray(ivBytes, body.length - tagBytes)), decipher.final()]).toString(
      "utf8",
    );
  } catch (cause) {
    throw new PersonalDataError("sealed value fails authentication: it was altered, or sealed under another key", {
      cause,
    });
  }
}
