/**
 * The port that makes and unwraps data keys: KMS on AWS (GenerateDataKey, Decrypt:
 * kms-key-wrapper.ts), a master key file in the embedded local cloud (here). Both bind a wrapped
 * key to its subject (KMS's encryption context; the local cipher's additional data), so a wrapped
 * key copied onto another subject's item does not unwrap. This module is the local one: a Lambda
 * bundle never carries it (keys.ts loads it only where a master key file is configured).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { PersonalDataError } from "./sealed.ts";

export interface DataKey {
  readonly plaintext: Uint8Array;
  readonly wrapped: Uint8Array;
}

export interface KeyWrapper {
  /** A new 256-bit data key for a subject, with its wrapped form (the only one ever stored). */
  generate(subject: string): Promise<DataKey>;
  unwrap(subject: string, wrapped: Uint8Array): Promise<Uint8Array>;
}

/** Locally: AES-256-GCM under a master key kept in a file of the local cloud's data folder. */
export function fileKeyWrapper(path: string): KeyWrapper {
  let master: Buffer | undefined;
  const masterKey = () => {
    master ??= readFileSync(path);
    if (master.length !== 32) throw new PersonalDataError(`master key file ${path} does not hold a 256-bit key`);
    return master;
  };
  return {
    async generate(subject) {
      const plaintext = randomBytes(32);
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", masterKey(), iv);
      cipher.setAAD(Buffer.from(subject));
      const wrapped = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      return { plaintext, wrapped };
    },
    async unwrap(subject, wrapped) {
      const bytes = Buffer.from(wrapped);
      const decipher = createDecipheriv("aes-256-gcm", masterKey(), bytes.subarray(0, 12));
      decipher.setAAD(Buffer.from(subject));
      decipher.setAuthTag(bytes.subarray(bytes.length - 16));
      try {
        return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]);
      } catch (cause) {
        throw new PersonalDataError(`the data key of subject ${subject} does not unwrap under this master key`, {
          cause,
        });
      }
    },
  };
}

/** Creates the local master key file if it is missing (0600); returns its path. */
export function ensureMasterKeyFile(path: string): string {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, randomBytes(32), { mode: 0o600, flag: "wx" });
  }
  return path;
}
