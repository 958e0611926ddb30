/**
 * A bus's archive in S3, the permanent log (law J): versioned, TLS-only, public access blocked,
 * encrypted with its own rotating KMS key, kept when its stack goes, with lifecycle tiers that
 * never expire a current object. Object Lock and cross-region replication are options, chosen
 * per deployment from CDK context (docs/deploy.md). Its name is published in SSM, so a
 * service's replayer finds it without a reference to the bus stack.
 */
import { createHash } from "node:crypto";
import { Aws, CfnOutput, Duration, RemovalPolicy, Token, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as ssm from "aws-cdk-lib/aws-ssm";
import { Construct, type IConstruct } from "constructs";
import { nagResource } from "./nag.ts";
import { archiveKeyAlias, busParameters } from "./names.ts";

/** Object Lock: every object version is kept at least `days`, in governance or compliance mode. */
export interface ObjectLockOptions {
  /** `governance`: principals with s3:BypassGovernanceRetention may still delete; `compliance`: nobody can, not even root. */
  readonly mode: "governance" | "compliance";
  readonly days: number;
}

/** Cross-region replication of every object to a bucket you own in another region. */
export interface ReplicationOptions {
  /** The destination bucket's ARN: versioned, in another region (with Object Lock too if this archive has it). */
  readonly bucketArn: string;
  /** The KMS key, in the destination's region, that encrypts the replicas. */
  readonly kmsKeyArn: string;
  /** @default the source object's storage class */
  readonly storageClass?: string;
}

export interface ArchiveOptions {
  /** @default none: versioning alone protects against overwrites, not against a deliberate delete of old versions */
  readonly objectLock?: ObjectLockOptions;
  /** @default none */
  readonly replication?: ReplicationOptions;
  /** Days a noncurrent object version (an overwritten manifest, a deleted object) is kept. @default 365 */
  readonly noncurrentVersionDays?: number;
}

export interface ArchiveProps extends ArchiveOptions {
  readonly prefix: string;
  readonly bus: string;
  /** The bucket's name in the plan (the local cloud's name); on AWS, account and region are appended. */
  readonly localName: string;
}

/** S3 bucket names are at most 63 characters; account (12) and region (up to 16) take 30 of them. */
const maxLocalNameLength = 63 - 30;

export class Archive extends Construct {
  readonly bucket: s3.Bucket;
  readonly key: kms.Key;
  /** The role S3 replicates with, when replication is on (add it to the destination key's policy). */
  readonly replicationRole?: iam.Role;

  constructor(scope: Construct, id: string, props: ArchiveProps) {
    super(scope, id);
    const bucketName = globalBucketName(props.localName);
    this.key = new kms.Key(this, "Key", {
      alias: archiveKeyAlias(props.prefix, props.bus),
      description: `Canon ${props.prefix} bus:${props.bus}: encrypts the archive and Athena's query results`,
      enableKeyRotation: true,
      // Without its key the archive is unreadable: the key outlives the stack, as the bucket does.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const replication = props.replication;
    if (replication) this.replicationRole = replicationRole(this, bucketName, this.key, replication);

    const tiers = (prefix: string): s3.LifecycleRule => ({
      id: `tiers-${prefix.replace("/", "")}`,
      prefix,
      // Written once, read in bulk by replays and Athena: infrequent access, then Glacier Instant
      // Retrieval (still millisecond reads, so neither a replay nor a query needs a restore).
      transitions: [
        { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) },
        { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) },
      ],
    });
    this.bucket = new s3.Bucket(this, "Bucket", {
      bucketName,
      versioned: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true, // one data key per bucket, not one KMS call per object
      removalPolicy: RemovalPolicy.RETAIN, // never autoDeleteObjects: the archive is the permanent log
      lifecycleRules: [
        // Objects and claim checks tier down; manifests and lineage, read on every batch, stay hot.
        tiers("archive/"),
        tiers("claims/"),
        {
          id: "old-versions",
          // Current versions never expire. What an overwrite or a delete left behind goes after a long time.
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays ?? 365),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      ...(props.objectLock && {
        objectLockEnabled: true,
        objectLockDefaultRetention:
          props.objectLock.mode === "compliance"
            ? s3.ObjectLockRetention.compliance(Duration.days(props.objectLock.days))
            : s3.ObjectLockRetention.governance(Duration.days(props.objectLock.days)),
      }),
      ...(replication &&
        this.replicationRole && {
          replicationRole: this.replicationRole,
          replicationRules: [
            {
              id: "everything",
              priority: 0,
              destination: s3.Bucket.fromBucketArn(this, "ReplicaBucket", replication.bucketArn),
              kmsKey: kms.Key.fromKeyArn(this, "ReplicaKey", replication.kmsKeyArn),
              sseKmsEncryptedObjects: true,
              // A delete on this side (a mistake, an attacker) must not reach the copy.
              deleteMarkerReplication: false,
              storageClass:
                replication.storageClass === undefined ? undefined : new s3.StorageClass(replication.storageClass),
            },
          ],
        }),
    });
    acknowledgeAccessLogs(this.bucket);

    new ssm.StringParameter(this, "BucketNameParameter", {
      parameterName: busParameters.archiveBucket(props.prefix, props.bus),
      stringValue: this.bucket.bucketName,
      description: `Canon ${props.prefix}: the ${props.bus} bus's archive bucket`,
    });
    new CfnOutput(this, "BucketName", { value: this.bucket.bucketName, description: "The bus's archive bucket" });
    if (this.replicationRole) {
      new CfnOutput(this, "ReplicationRoleArn", {
        value: this.replicationRole.roleArn,
        description: "Allow this role kms:Encrypt and kms:GenerateDataKey in the replica key's policy",
      });
    }
  }
}

/**
 * `<localName>-<account>-<region>`: unique across AWS, and the same on every deploy, so a
 * redeploy after a `cdk destroy` finds the retained bucket's name taken (and stops) rather than
 * silently starting a second, empty archive. A long local name is shortened with a hash.
 */
export function globalBucketName(localName: string): string {
  const base =
    localName.length <= maxLocalNameLength
      ? localName
      : `${localName.slice(0, maxLocalNameLength - 9)}-${createHash("sha256").update(localName).digest("hex").slice(0, 8)}`;
  return `${base}-${Aws.ACCOUNT_ID}-${Aws.REGION}`;
}

/** S3's server access logs cannot go to an SSE-KMS bucket, which law KMS requires of every bucket. */
export function acknowledgeAccessLogs(bucket: s3.IBucket): void {
  Validations.of(bucket).acknowledge({
    id: "AwsSolutions-S1",
    reason:
      "Server access logs can only be delivered to a bucket encrypted with SSE-S3, and law KMS requires KMS on " +
      "every bucket; object-level access is audited with CloudTrail data events instead (docs/deploy.md).",
  });
}

/** The role S3 replicates with: read this bucket's versions, write replicas, use both keys. */
function replicationRole(scope: Construct, bucketName: string, key: kms.IKey, options: ReplicationOptions): iam.Role {
  const replica = options.bucketArn;
  if (!Token.isUnresolved(replica) && !/^arn:[^:]+:s3:::[a-z0-9.-]{3,63}$/.test(replica)) {
    throw new Error(`the archive's replication destination must be a bucket ARN, not "${replica}"`);
  }
  if (!Token.isUnresolved(options.kmsKeyArn) && !/^arn:[^:]+:kms:[a-z0-9-]+:\d{12}:key\/.+$/.test(options.kmsKeyArn)) {
    throw new Error(`the archive's replica key must be a KMS key ARN, not "${options.kmsKeyArn}"`);
  }
  const source = `arn:${Aws.PARTITION}:s3:::${bucketName}`;
  const role = new iam.Role(scope, "ReplicationRole", {
    assumedBy: new iam.ServicePrincipal("s3.amazonaws.com"),
    description: `Replicates ${bucketName} to ${replica}`,
  });
  role.addToPolicy(
    new iam.PolicyStatement({ actions: ["s3:GetReplicationConfiguration", "s3:ListBucket"], resources: [source] }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: [
        "s3:GetObjectVersionForReplication",
        "s3:GetObjectVersionAcl",
        "s3:GetObjectVersionTagging",
        "s3:GetObjectRetention",
        "s3:GetObjectLegalHold",
      ],
      resources: [`${source}/*`],
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
      resources: [`${replica}/*`],
    }),
  );
  role.addToPolicy(new iam.PolicyStatement({ actions: ["kms:Decrypt"], resources: [key.keyArn] }));
  role.addToPolicy(
    new iam.PolicyStatement({ actions: ["kms:Encrypt", "kms:GenerateDataKey"], resources: [options.kmsKeyArn] }),
  );
  for (const objects of [`${source}/*`, `${replica}/*`]) {
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[${nagResource(scope, objects)}]`,
      reason: "S3 replicates every object version of the archive: the role reads and writes objects of any key.",
    });
  }
  return role;
}

/** Archive options from CDK context (docs/deploy.md): `canon:archiveObjectLock`, `canon:archiveReplicationDestination`. */
export function archiveOptionsFromContext(scope: IConstruct): ArchiveOptions {
  const lock = scope.node.tryGetContext("canon:archiveObjectLock");
  const destination = scope.node.tryGetContext("canon:archiveReplicationDestination");
  return {
    ...(lock !== undefined && lock !== "" && { objectLock: parseObjectLock(lock) }),
    ...(destination !== undefined && destination !== "" && { replication: parseReplication(destination) }),
  };
}

/** `governance:365`, `compliance:2555`, or `{ "mode": "governance", "days": 365 }`. */
function parseObjectLock(value: unknown): ObjectLockOptions {
  const [mode, days] =
    typeof value === "string"
      ? value.split(":")
      : [(value as { mode?: unknown })?.mode, String((value as { days?: unknown })?.days)];
  const n = Number(days);
  if ((mode !== "governance" && mode !== "compliance") || !Number.isInteger(n) || n < 1) {
    throw new Error(
      `canon:archiveObjectLock must be "governance:<days>" or "compliance:<days>", not ${JSON.stringify(value)}`,
    );
  }
  return { mode, days: n };
}

/** `<bucket ARN>,<KMS key ARN>[,<storage class>]`, or `{ "bucketArn": …, "kmsKeyArn": …, "storageClass": … }`. */
function parseReplication(value: unknown): ReplicationOptions {
  const parts =
    typeof value === "string"
      ? value.split(",").map((part) => part.trim())
      : [
          (value as Record<string, unknown>)?.bucketArn,
          (value as Record<string, unknown>)?.kmsKeyArn,
          (value as Record<string, unknown>)?.storageClass,
        ];
  const [bucketArn, kmsKeyArn, storageClass] = parts;
  if (typeof bucketArn !== "string" || typeof kmsKeyArn !== "string" || bucketArn === "" || kmsKeyArn === "") {
    throw new Error(
      `canon:archiveReplicationDestination must be "<bucket ARN>,<KMS key ARN>[,<storage class>]", not ${JSON.stringify(value)}`,
    );
  }
  return { bucketArn, kmsKeyArn, ...(typeof storageClass === "string" && storageClass !== "" && { storageClass }) };
}
