/**
 * Data keys from KMS (GenerateDataKey, Decrypt), the subject as encryption context (key-wrapper.ts
 * has the port). The client is loaded on first use, from the runtime's SDK (bundles leave
 * `@aws-sdk/*` to the runtime), so a function that never meets personal data never loads it.
 */
import { createRequire } from "node:module";
import type { KeyWrapper } from "./key-wrapper.ts";
import { PersonalDataError } from "./sealed.ts";

/** The key wrapper over one KMS key (its id, ARN or alias). */
export function kmsKeyWrapper(keyId: string): KeyWrapper {
  type Kms = typeof import("@aws-sdk/client-kms");
  let loaded: { sdk: Kms; client: import("@aws-sdk/client-kms").KMSClient } | undefined;
  const kms = () => {
    if (loaded === undefined) {
      const sdk = createRequire(import.meta.url)("@aws-sdk/client-kms") as Kms;
      loaded = { sdk, client: new sdk.KMSClient({ maxAttempts: 5 }) };
    }
    return loaded;
  };
  return {
    async generate(subject) {
      const { sdk, client } = kms();
      const out = await client.send(
        new sdk.GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_256", EncryptionContext: { subject } }),
      );
      if (out.Plaintext === undefined || out.CiphertextBlob === undefined)
        throw new PersonalDataError("KMS GenerateDataKey returned no key");
      return { plaintext: out.Plaintext, wrapped: out.CiphertextBlob };
    },
    async unwrap(subject, wrapped) {
      const { sdk, client } = kms();
      const out = await client.send(
        new sdk.DecryptCommand({ KeyId: keyId, CiphertextBlob: wrapped, EncryptionContext: { subject } }),
      );
      if (out.Plaintext === undefined) throw new PersonalDataError("KMS Decrypt returned no key");
      return out.Plaintext;
    },
  };
}
