/**
 * Child-process entry that runs one emulator of the embedded local cloud:
 *   node emulator-host.ts <kinesis|dynamodb|sqs-sns-s3> <port> <dataDir>
 * Prints one JSON line `{"ready":true}` when it serves. It exits when its parent's pipe
 * closes (so a killed parent leaves no stray process) or on SIGTERM, not on SIGINT (below).
 * Kinesis is kinesalite (LevelDB), DynamoDB dynalite (LevelDB), SNS + SQS + S3 fauxqs (SQLite and
 * files). A data folder it cannot use stops it with code 3 and a message naming the file, the
 * reason and the way out (docs/local-cloud.md).
 */

import { createDecipheriv } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { patchFauxqs } from "./fauxqs-patches.ts";

const [kind, portText, dataDir] = process.argv.slice(2);
const port = Number(portText);
if (kind === undefined || dataDir === undefined || !Number.isInteger(port) || port <= 0) {
  console.error("usage: emulator-host.ts <kinesis|dynamodb|sqs-sns-s3> <port> <dataDir>");
  process.exit(2);
}
const dir: string = dataDir;
mkdirSync(dir, { recursive: true });
const require = createRequire(import.meta.url);

let stop: () => Promise<void> = async () => {};

async function start(): Promise<void> {
  switch (kind) {
    case "kinesis": {
      // kinesalite: every PutRecord(s) is in LevelDB's log (written to the OS, not only to this
      // process) before it is acknowledged, so a killed process loses no acknowledged record.
      await checkKinesisData(dir);
      patchKinesalite();
      const kinesalite = require("kinesalite") as (options: object) => net.Server;
      const server = kinesalite({
        path: dir,
        createStreamMs: 0,
        deleteStreamMs: 0,
        updateStreamMs: 0,
        shardLimit: 10_000,
      });
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => resolve());
      });
      stop = () =>
        new Promise((resolve) => {
          // Closes the LevelDB database, then the server.
          server.close(() => resolve());
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
      return;
    }
    case "dynamodb": {
      const dynalite = require("dynalite") as (options: object) => net.Server;
      const server = dynalite({ path: dir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => resolve());
      });
      stop = () =>
        new Promise((resolve) => {
          server.close(() => resolve());
          // Clients keep connections alive; close them so the server can finish closing.
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
      return;
    }
    case "sqs-sns-s3": {
      listenOnLoopbackOnly();
      await patchFauxqs();
      const { startFauxqs } = await import("fauxqs");
      // No `host`: queue URLs then use the request's host (127.0.0.1:port), the SDK's endpoint.
      const server = await startFauxqs({
        port,
        logger: false,
        dataDir: join(dir, "sqs-sns"),
        s3StorageDir: join(dir, "s3"),
      });
      stop = () => server.stop();
      return;
    }
    default:
      throw new Error(`unknown emulator "${kind}"`);
  }
}

/** fauxqs binds 0.0.0.0; servers started here must listen on loopback only. */
function listenOnLoopbackOnly(): void {
  const listen = net.Server.prototype.listen as (...args: unknown[]) => net.Server;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    const [first] = args;
    if (typeof first === "object" && first !== null && (first as net.ListenOptions).host === "0.0.0.0") {
      args[0] = { ...(first as net.ListenOptions), host: "127.0.0.1" };
    }
    return listen.apply(this, args);
  } as typeof net.Server.prototype.listen;
}

/**
 * A data folder this emulator cannot use: what is wrong with which file, and what to do. The
 * host prints it without a stack trace and exits with code 3 (cloud.ts passes it on as is).
 */
class DataProblem extends Error {}

/** How to get going again when the Kinesis data folder cannot be used. */
function kinesisRecovery(folder: string, suffix = "damaged"): string {
  const dataDir = dirname(folder);
  const aside = `${folder}.${suffix}-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "")}`;
  return [
    "To start again, move the folder aside (keep it if you want to inspect it) and run canon dev again:",
    `  mv "${folder}" "${aside}"`,
    "The stream then starts empty; the other emulators keep their data. The archive",
    `(${join(dataDir, "sqs-sns-s3", "s3")}) still holds every record the archiver had written: query it with`,
    "`canon archive sql`. No command replays the archive into the stream. For a clean system instead, move",
    `the whole data folder ("${dataDir}") aside.`,
  ].join("\n");
}

/**
 * Refuses, before kinesalite opens it, a Kinesis data folder that would start wrong: kinesis-mock's
 * JSON file (the emulator of earlier versions), a LevelDB folder without its CURRENT file (LevelDB
 * would make a new, empty database over it), a log or MANIFEST with damaged records (LevelDB would
 * drop them without a word), a table the MANIFEST lists that is missing, of another size or with a
 * damaged frame, a database LevelDB cannot open or read to its end. A log cut short at its end is
 * what a kill leaves when it interrupts a write that was never acknowledged: LevelDB ignores it.
 * Also forgets a stream that a kill caught between CreateStream and ACTIVE (provisioning creates it again).
 */
async function checkKinesisData(folder: string): Promise<void> {
  const names = readdirSync(folder);
  const problem = (file: string, why: string, suffix?: string) =>
    new DataProblem(
      `The local Kinesis emulator cannot use its data: ${join(folder, file)}: ${why}\n${kinesisRecovery(folder, suffix)}`,
    );
  if (names.includes("kinesis-data.json")) {
    const bytes = statSync(join(folder, "kinesis-data.json")).size;
    throw problem(
      "kinesis-data.json",
      `this is kinesis-mock's data (the Kinesis emulator of earlier Canon versions${bytes === 0 ? "; the file is empty, cut short by a stop" : `, ${bytes} bytes`}). ` +
        "The emulator is now kinesalite, which keeps a LevelDB database in this folder and cannot read that file.",
      "kinesis-mock",
    );
  }
  const leveldbFiles = names.filter((name) => /^(MANIFEST-\d+|\d+\.(log|ldb|sst))$/.test(name));
  if (leveldbFiles.length > 0 && !names.includes("CURRENT")) {
    throw problem(
      "CURRENT",
      `missing, beside ${leveldbFiles.join(", ")}: LevelDB cannot tell which MANIFEST describes the database (it would start a new, empty one over it).`,
    );
  }
  // The write-ahead logs and the MANIFEST that CURRENT names are in LevelDB's log format; a kill
  // can only cut the one being written short at its end. Older files LevelDB deletes on opening.
  const current = names.includes("CURRENT") ? readFileSync(join(folder, "CURRENT"), "utf8") : undefined;
  if (current !== undefined && leveldbFiles.length > 0 && !/^MANIFEST-\d+\n$/.test(current)) {
    throw problem(
      "CURRENT",
      `damaged: it should hold the name of a MANIFEST file and a newline, not ${JSON.stringify(current.slice(0, 40))}.`,
    );
  }
  const manifest = current?.trim();
  let edits: Buffer[] | undefined;
  for (const file of names.filter((name) => /^\d+\.log$/.test(name) || name === manifest)) {
    const { records, damage } = readLevelDbLog(readFileSync(join(folder, file)));
    if (damage !== undefined) {
      throw problem(file, `${damage}: damaged (LevelDB would silently drop the damaged part and open without it).`);
    }
    if (file === manifest) edits = records;
  }
  if (manifest !== undefined && edits === undefined && leveldbFiles.length > 0) {
    throw problem(manifest, "missing: CURRENT names it, and it describes the database.");
  }
  // The tables the MANIFEST lists are complete (LevelDB syncs a table before it lists it); others
  // are leftovers of an interrupted compaction, which LevelDB deletes on opening.
  for (const [number, size] of liveTables(edits ?? []) ?? []) {
    const candidates = [`${String(number).padStart(6, "0")}.ldb`, `${String(number).padStart(6, "0")}.sst`];
    const table = candidates.find((name) => names.includes(name));
    if (table === undefined) throw problem(candidates[0] as string, `missing: ${manifest} lists it (${size} bytes).`);
    const bytes = readFileSync(join(folder, table));
    if (bytes.length !== size) {
      throw problem(table, `${bytes.length} bytes where ${manifest} says ${size}: cut short or overwritten.`);
    }
    const damage = checkLevelDbTable(bytes);
    if (damage !== undefined) throw problem(table, `${damage}: damaged.`);
  }
  const leveldown = require("leveldown") as (location: string) => LevelDown;
  const db = leveldown(folder);
  const call = <T>(run: (callback: (error: Error | null | undefined, value?: T) => void) => void) =>
    new Promise<T>((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value as T))));
  // After a read error LevelDB may never answer the iterator's end or the close: do not wait on it.
  const bounded = (promise: Promise<unknown>) =>
    Promise.race([promise.catch(() => {}), sleep(2_000, undefined, { ref: false })]);
  try {
    await call((callback) => db.open({ createIfMissing: true }, callback));
  } catch (error) {
    const message = (error as Error).message;
    if (/\bLOCK\b/.test(message) && /lock/i.test(message)) {
      throw new DataProblem(
        `The local Kinesis emulator cannot use its data: ${join(folder, "LOCK")} is held by another process (${message}). ` +
          "Is another canon dev running on this data folder? Stop it first.",
      );
    }
    throw problem(fileNamedIn(message, folder) ?? "", `LevelDB cannot open the database: ${message}.`);
  }
  try {
    const stale: string[] = [];
    const iterator = db.iterator({ keyAsBuffer: false, valueAsBuffer: false });
    let records = 0;
    try {
      for (;;) {
        const [key, value] = await new Promise<[string | undefined, string | undefined]>((resolve, reject) =>
          iterator.next((error, k, v) => (error ? reject(error) : resolve([k, v]))),
        );
        if (key === undefined) break;
        records += 1;
        let parsed: { StreamStatus?: unknown };
        try {
          parsed = JSON.parse(value ?? "");
        } catch {
          throw new Error(`the value under key ${JSON.stringify(key)} is not the JSON kinesalite wrote`);
        }
        if (key.startsWith("!meta!") && parsed.StreamStatus === "CREATING") stale.push(key);
      }
    } catch (error) {
      const message = (error as Error).message;
      throw problem(
        fileNamedIn(message, folder) ?? "",
        `reading the database failed after ${records} entries: ${message}.`,
      );
    } finally {
      await bounded(call((callback) => iterator.end(callback)));
    }
    for (const key of stale) {
      await call((callback) => db.del(key, callback));
      console.error(
        `kinesis: forgot stream ${key.slice(6)}, left CREATING by a stop during CreateStream; provisioning creates it again`,
      );
    }
  } finally {
    await bounded(call((callback) => db.close(callback)));
  }
}

interface LevelDown {
  open(options: object, callback: (error?: Error | null) => void): void;
  close(callback: (error?: Error | null) => void): void;
  del(key: string, callback: (error?: Error | null) => void): void;
  iterator(options: object): {
    next(callback: (error: Error | null | undefined, key?: string, value?: string) => void): void;
    end(callback: (error?: Error | null) => void): void;
  };
}

/** The file a LevelDB error message names, relative to the folder, if it names one. */
function fileNamedIn(message: string, folder: string): string | undefined {
  const named = message.match(/(?:^|[\s:])((?:\/[^\s:]+\/)?(?:CURRENT|LOCK|MANIFEST-\d+|\d+\.(?:log|ldb|sst)))\b/);
  return named?.[1] === undefined ? undefined : basename(named[1].startsWith(folder) ? named[1] : named[1]);
}

/**
 * Reads a file in LevelDB's log format (the write-ahead logs and the MANIFEST): 32 KiB blocks of
 * fragments (masked CRC-32C, length, type, data). Returns the whole records, and what is damaged
 * if something is, ignoring a fragment cut short at the very end (a write a kill interrupted,
 * never acknowledged).
 */
function readLevelDbLog(bytes: Buffer): { records: Buffer[]; damage?: string } {
  const blockSize = 32_768;
  const headerSize = 7;
  const records: Buffer[] = [];
  let parts: Buffer[] | undefined;
  let offset = 0;
  while (offset < bytes.length) {
    const left = blockSize - (offset % blockSize);
    if (left < headerSize) {
      offset += left; // a block's trailer
      continue;
    }
    if (offset + headerSize > bytes.length) break; // a header cut short at the end
    const length = bytes.readUInt16LE(offset + 4);
    const type = bytes[offset + 6] as number;
    if (type === 0 && length === 0) {
      offset += left; // preallocated space: the rest of the block is empty
      continue;
    }
    const end = offset + headerSize + length;
    if (end - offset > left) return { records, damage: `the record at byte ${offset} runs past its 32 KiB block` };
    if (end > bytes.length) break; // cut short at the end of the file: a kill's doing
    if (type < 1 || type > 4) return { records, damage: `the record at byte ${offset} has an unknown type ${type}` };
    if (bytes.readUInt32LE(offset) !== maskCrc(crc32c(bytes.subarray(offset + 6, end)))) {
      return { records, damage: `the record at byte ${offset} (${length} bytes) fails its checksum` };
    }
    const data = bytes.subarray(offset + headerSize, end);
    if (type === 1) records.push(data);
    else if (type === 2) parts = [data];
    else if (parts === undefined) return { records, damage: `the record at byte ${offset} continues no record` };
    else {
      parts.push(data);
      if (type === 4) {
        records.push(Buffer.concat(parts));
        parts = undefined;
      }
    }
    offset = end;
  }
  return { records };
}

/**
 * The tables a MANIFEST's version edits leave in use, with their sizes (file number → bytes);
 * undefined if an edit holds something this reader does not know.
 */
function liveTables(edits: readonly Buffer[]): Map<number, number> | undefined {
  const live = new Map<number, number>();
  for (const edit of edits) {
    let at = 0;
    const varint = () => {
      let value = 0;
      for (let shift = 0; at < edit.length && shift < 70; shift += 7) {
        const byte = edit[at++] as number;
        value += (byte & 0x7f) * 2 ** shift;
        if (byte < 0x80) return value;
      }
      throw new Error("varint cut short");
    };
    const skipBytes = () => {
      const length = varint(); // read before adding: `at += varint()` would add to the old `at`
      at += length;
    };
    try {
      while (at < edit.length) {
        switch (varint()) {
          case 1: // comparator name
            skipBytes();
            break;
          case 2: // log number
          case 3: // next file number
          case 4: // last sequence
          case 9: // previous log number
            varint();
            break;
          case 5: // compaction pointer: level, key
            varint();
            skipBytes();
            break;
          case 6: // deleted file: level, number
            varint();
            live.delete(varint());
            break;
          case 7: {
            // new file: level, number, size, smallest key, largest key
            varint();
            const number = varint();
            const size = varint();
            skipBytes();
            skipBytes();
            live.set(number, size);
            break;
          }
          default:
            return undefined;
        }
      }
    } catch {
      return undefined;
    }
  }
  return live;
}

/**
 * Checks a LevelDB table's frame: its 48-byte footer (block handles and magic number) and the
 * checksums of its index and metaindex blocks. Returns what is damaged, or undefined.
 */
function checkLevelDbTable(bytes: Buffer): string | undefined {
  if (bytes.length < 48) return `${bytes.length} bytes, shorter than a table's 48-byte footer (cut short)`;
  const footer = bytes.subarray(bytes.length - 48);
  if (footer.readUInt32LE(40) !== 0x8b80fb57 || footer.readUInt32LE(44) !== 0xdb477524) {
    return "its last 48 bytes are not a LevelDB table's footer (cut short or overwritten)";
  }
  let at = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 0; shift < 63 && at < 40; shift += 7) {
      const byte = footer[at++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    return Number.NaN;
  };
  const blocks = [
    { name: "metaindex", offset: varint(), size: varint() },
    { name: "index", offset: varint(), size: varint() },
  ];
  for (const block of blocks) {
    const end = block.offset + block.size + 5;
    if (!Number.isFinite(end) || end > bytes.length - 48) return `its ${block.name} block lies outside the file`;
    const expected = bytes.readUInt32LE(block.offset + block.size + 1);
    if (maskCrc(crc32c(bytes.subarray(block.offset, block.offset + block.size + 1))) !== expected) {
      return `its ${block.name} block fails its checksum`;
    }
  }
  return undefined;
}

const crcTable = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (crcTable[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** LevelDB stores CRCs masked (rotated right by 15 bits plus a constant). */
function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/**
 * Gaps of kinesalite 3.3.3 that this project's readers meet, closed by wrapping its actions (before
 * kinesalite loads them): an AT_TIMESTAMP iterator for a time after the shard's last record never
 * got an answer (AWS positions it at the tip); a malformed StartingSequenceNumber got a 500 (AWS:
 * InvalidArgumentException); GetRecords always said MillisBehindLatest 0 (AWS says how far behind
 * the tip the page ends, which readers use to know they are caught up).
 */
function patchKinesalite(): void {
  type Callback = (error: unknown, result?: Record<string, unknown>) => void;
  type Action = (store: KinesaliteStore, data: Record<string, unknown>, cb: Callback) => void;
  const wrap = (name: string, around: (original: Action) => Action) => {
    const path = require.resolve(`kinesalite/actions/${name}.js`);
    const original = require(path) as Action;
    const cached = require.cache[path];
    if (cached !== undefined) cached.exports = around(original);
  };
  const shardHex = (shardIx: number) => `0000000${shardIx.toString(16)}`.slice(-8);
  const shardIndex = (shardId: unknown) => Number.parseInt(String(shardId).split("-")[1] ?? "", 10);

  wrap("getShardIterator", (original) => (store, data, cb) => {
    const shardIx = shardIndex(data.ShardId);
    const timestamp = Number(data.Timestamp);
    if (data.ShardIteratorType !== "AT_TIMESTAMP" || !Number.isInteger(shardIx) || !(timestamp * 1000 <= Date.now())) {
      original(store, data, (error, result) => {
        // A sequence number of an older format made it answer 500; AWS calls it invalid (400).
        const failed = error as { statusCode?: number } | null | undefined;
        if (failed?.statusCode === 500 && data.StartingSequenceNumber !== undefined) {
          const message = `StartingSequenceNumber ${data.StartingSequenceNumber} used in GetShardIterator on shard ${data.ShardId} in stream ${data.StreamName} under account 000000000000 is invalid.`;
          cb(
            Object.assign(new Error(message), {
              statusCode: 400,
              body: { __type: "InvalidArgumentException", message },
            }),
          );
          return;
        }
        cb(error, result);
      });
      return;
    }
    const stream = store
      .getStreamDb(String(data.StreamName))
      .createReadStream({ gt: shardHex(shardIx), lt: shardHex(shardIx + 1) });
    let settled = false;
    const settle = (next: Record<string, unknown>) => {
      if (settled) return;
      settled = true;
      stream.destroy();
      original(store, next, cb);
    };
    stream.on("data", ({ key, value }: { key: string; value: { ApproximateArrivalTimestamp: number } }) => {
      if (value.ApproximateArrivalTimestamp >= timestamp) {
        const { Timestamp: _, ...rest } = data;
        settle({ ...rest, ShardIteratorType: "AT_SEQUENCE_NUMBER", StartingSequenceNumber: key.split("/")[1] });
      }
    });
    stream.on("end", () => {
      const { Timestamp: _, ...rest } = data;
      settle({ ...rest, ShardIteratorType: "LATEST" });
    });
    stream.on("error", (error: unknown) => {
      if (settled) return;
      settled = true;
      cb(error);
    });
  });

  wrap("getRecords", (original) => (store, data, cb) => {
    original(store, data, (error, result) => {
      const records = (result?.Records ?? []) as { SequenceNumber: string; ApproximateArrivalTimestamp: number }[];
      const last = records.at(-1);
      if (error || last === undefined) {
        cb(error, result);
        return;
      }
      // Is there a record after the page's last one? Then the page ends behind the tip.
      const position = iteratorPosition(String(data.ShardIterator));
      if (position === undefined) {
        cb(error, result);
        return;
      }
      const prefix = shardHex(position.shardIx);
      const key = `${prefix}/${last.SequenceNumber}`;
      const keys = store
        .getStreamDb(position.streamName)
        .createKeyStream({ gt: key, lt: shardHex(position.shardIx + 1), limit: 1 });
      let more = false;
      keys.on("data", () => {
        more = true;
      });
      const done = () => {
        if (more) {
          result = {
            ...result,
            MillisBehindLatest: Math.max(1, Date.now() - Math.round(last.ApproximateArrivalTimestamp * 1000)),
          };
        }
        cb(null, result);
      };
      keys.on("end", done);
      keys.on("error", () => cb(null, result));
    });
  });

  /** The stream and shard a kinesalite iterator reads (its iterators are AES-encrypted with a fixed key). */
  function iteratorPosition(iterator: string): { streamName: string; shardIx: number } | undefined {
    const kinesaliteDb = require("kinesalite/db") as { ITERATOR_PWD_KEY: Buffer; ITERATOR_PWD_IV: Buffer };
    try {
      const decipher = createDecipheriv("aes-256-cbc", kinesaliteDb.ITERATOR_PWD_KEY, kinesaliteDb.ITERATOR_PWD_IV);
      const buffer = Buffer.from(iterator, "base64");
      const pieces = Buffer.concat([decipher.update(buffer.subarray(8)), decipher.final()])
        .toString("utf8")
        .split("/");
      const shardIx = shardIndex(pieces[2]);
      return pieces[1] && Number.isInteger(shardIx) ? { streamName: pieces[1], shardIx } : undefined;
    } catch {
      return undefined;
    }
  }
}

interface KinesaliteStore {
  getStreamDb(name: string): {
    createReadStream(options: object): NodeJS.ReadableStream & { destroy(): void };
    createKeyStream(options: object): NodeJS.ReadableStream;
  };
}

async function shutdown(code: number): Promise<never> {
  try {
    // Bounded: an emulator that will not close its connections must not hold up the stop.
    await Promise.race([stop(), sleep(3_000)]);
  } finally {
    process.exit(code);
  }
}

process.on("SIGTERM", () => void shutdown(0));
// A terminal's Ctrl-C reaches every process of the foreground group, this one too. The parent
// decides when the emulator stops: after the functions that use it (then it closes the pipe);
// were the parent gone, the pipe closes and this exits all the same.
process.on("SIGINT", () => {});
process.stdin.on("end", () => void shutdown(0));
process.stdin.on("error", () => void shutdown(0));
process.stdin.resume();

start().then(
  () => process.stdout.write(`${JSON.stringify({ ready: true, kind, port })}\n`),
  (error: unknown) => {
    if (error instanceof DataProblem) {
      console.error(error.message);
      process.exit(3);
    }
    console.error(`emulator ${kind} failed to start:`, error);
    process.exit(1);
  },
);
