/**
 * What the embedded SQS/SNS/S3 (fauxqs 2.4) needs to behave as AWS does and to survive a kill -9,
 * applied once in the emulator's own process before fauxqs starts. Each patch checks the code it
 * changes and refuses loudly if a fauxqs release moved it (the tests named below then fail).
 *
 * 1. Queues: SQLite (WAL) with `synchronous = NORMAL` — no fsync per message (6.8 → 0.1 ms a write
 *    here), and every committed write still survives a kill -9 (only a power cut could take the
 *    last ones).
 * 2. FIFO receives take several messages of one group, in order, as SQS does: fauxqs took one a
 *    group, so a hot aggregate moved one command per round trip (test/integration/fifo-batches).
 *    With several in flight, fauxqs put each one coming back (visibility ended or set to 0) at
 *    the front of its group, which reversed them: they go back in sequence order instead.
 * 3. S3 objects are replaced atomically: fauxqs rewrote an object's file in place, so a kill in the
 *    middle of rewriting the archive's manifest left it empty for good (found by the crash soak).
 *    Data and metadata are written beside the object, then renamed over it; a restart finishes or
 *    undoes a replacement a kill interrupted (test/integration/crash-soak, kinesis-durability).
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

type Prototype = Record<string, unknown>;

/** Applies every patch; call before importing fauxqs's entry point. */
export async function patchFauxqs(): Promise<void> {
  await syncSqliteOnCommitToOsOnly();
  const dist = dirname(fileURLToPath(import.meta.resolve("fauxqs")));
  const load = async (path: string) => (await import(pathToFileURL(join(dist, path)).href)) as Record<string, unknown>;
  const queue = (await load("sqs/sqsStore.js")).SqsQueue as { prototype: Prototype };
  receiveWholeFifoGroups(queue);
  returnInSequenceOrder(queue);
  replaceObjectsAtomically((await load("s3/fileS3Persistence.js")).FileS3Persistence as { prototype: Prototype });
}

async function syncSqliteOnCommitToOsOnly(): Promise<void> {
  const { DatabaseSync } = await import("node:sqlite");
  const exec = DatabaseSync.prototype.exec;
  DatabaseSync.prototype.exec = function (this: InstanceType<typeof DatabaseSync>, sql: string) {
    const result = exec.call(this, sql);
    if (/^\s*PRAGMA\s+journal_mode\s*=\s*WAL\s*;?\s*$/i.test(sql)) exec.call(this, "PRAGMA synchronous = NORMAL");
    return result;
  };
}

/** Rebuilds a method from its own text with `edit` applied; `names` are what it takes from its module. */
function rewrite(
  target: { prototype: Prototype } | undefined,
  method: string,
  edit: (source: string) => string,
  names: Record<string, unknown>,
): void {
  const original = target?.prototype[method];
  if (typeof original !== "function") throw new Error(`fauxqs: ${method} not found; check fauxqs-patches.ts`);
  const source = original.toString();
  const edited = edit(source);
  if (edited === source) throw new Error(`fauxqs: ${method} no longer matches; check fauxqs-patches.ts`);
  const body = edited.replace(new RegExp(`^${method}\\s*`), "function ");
  (target as { prototype: Prototype }).prototype[method] = new Function(...Object.keys(names), `return ${body}`)(
    ...Object.values(names),
  );
}

function receiveWholeFifoGroups(queue: { prototype: Prototype } | undefined): void {
  rewrite(
    queue,
    "dequeueFifo",
    (source) =>
      source.replace(
        /(this\.fifoLockedGroups\.set\(groupId, \(this\.fifoLockedGroups\.get\(groupId\) \?\? 0\) \+ 1\);\s*)break;/,
        "$1",
      ),
    { randomUUID },
  );
}

/** A FIFO group's messages in sequence order (fauxqs pads sequence numbers to 20 digits). */
function bySequence(a: { sequenceNumber?: string }, b: { sequenceNumber?: string }): number {
  return (a.sequenceNumber ?? "").localeCompare(b.sequenceNumber ?? "");
}

function returnInSequenceOrder(queue: { prototype: Prototype } | undefined): void {
  const sorted = (source: string) =>
    source.replaceAll("group.unshift(entry.message);", "group.unshift(entry.message); group.sort(bySequence);");
  rewrite(queue, "changeVisibility", sorted, { bySequence });
  rewrite(queue, "processTimers", sorted, { bySequence, DEFAULT_FIFO_GROUP_ID: "__default" });
}

const pending = ".canon-new";

function replaceObjectsAtomically(persistence: { prototype: Prototype } | undefined): void {
  // Write both files beside the object, then rename the data over it, then the metadata.
  rewrite(
    persistence,
    "upsertObject",
    (source) =>
      source
        .replace("writeFileSync(dataPath, obj.body);", `writeFileSync(dataPath + "${pending}", obj.body);`)
        .replace(
          "writeFileSync(metaPath, JSON.stringify(meta));",
          `writeFileSync(metaPath + "${pending}", JSON.stringify(meta)); renameSync(dataPath + "${pending}", dataPath); renameSync(metaPath + "${pending}", metaPath);`,
        ),
    { join, dirname, mkdirSync, writeFileSync, renameSync, encodeKeyToPath },
  );
  // Before loading: a replacement whose data was renamed is finished (its metadata renamed too);
  // one whose data was not is undone (the object stays as it was: its write was never answered).
  const loadS3 = persistence?.prototype.loadS3 as (this: { bucketsDir: string }, store: unknown) => void;
  (persistence as { prototype: Prototype }).prototype.loadS3 = function (this: { bucketsDir: string }, store: unknown) {
    if (existsSync(this.bucketsDir)) settleReplacements(this.bucketsDir);
    return loadS3.call(this, store);
  };
}

function settleReplacements(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      settleReplacements(path);
    } else if (entry.name.endsWith(`.meta.json${pending}`)) {
      const meta = path.slice(0, -pending.length);
      const data = `${meta.slice(0, -".meta.json".length)}.data${pending}`;
      if (existsSync(data)) {
        unlinkSync(data);
        unlinkSync(path);
      } else {
        renameSync(path, meta);
      }
    } else if (
      entry.name.endsWith(`.data${pending}`) &&
      !existsSync(`${path.slice(0, -`.data${pending}`.length)}.meta.json${pending}`)
    ) {
      unlinkSync(path);
    }
  }
}

/** fauxqs's own key → path encoding (not exported by it): unsafe characters percent-encoded, `/` a folder. */
function encodeKeyToPath(key: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the same characters fauxqs encodes
  const encoded = key.replace(/[<>:"|?*\\%\x00-\x1f]/g, (ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return encoded.split("/").join(sep);
}
