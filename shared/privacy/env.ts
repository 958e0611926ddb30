/**
 * Where a function finds the subject keys: set locally by the embedded cloud
 * (shared/local-cloud/provision.ts), on AWS by infra/privacy.ts.
 */
export const privacyEnv = {
  /** The DynamoDB table of subject keys (`{prefix}-subject-keys`). */
  keysTable: "CANON_SUBJECT_KEYS_TABLE",
  /** On AWS: the KMS key that wraps every data key. */
  kmsKeyId: "CANON_PRIVACY_KMS_KEY",
  /** Locally: the file holding the master key that wraps every data key (in the local cloud's data folder). */
  masterKeyFile: "CANON_PRIVACY_MASTER_KEY_FILE",
  /** How long a function keeps a data key it read, in ms (docs/privacy.md). */
  keyCacheTtlMs: "CANON_KEY_CACHE_TTL_MS",
} as const;

/**
 * A function keeps a data key at most this long by default: an erasure reaches every reader
 * within it. The erase waits it out before it answers, inside API Gateway's 30 s limit.
 */
export const defaultKeyCacheTtlMs = 20_000;

/** The subject keys table of an app. */
export const subjectKeysTableName = (prefix: string): string => `${prefix}-subject-keys`;

/** Where the embedded local cloud keeps its master key, in its data folder. */
export const masterKeyFileIn = (dataDir: string): string => `${dataDir}/privacy/master.key`;
