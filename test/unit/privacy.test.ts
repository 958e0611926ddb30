/**
 * Personal data: the sealed value (AES-256-GCM; tampering is a clear error), the subject keys'
 * cache (a key read is kept for its TTL, no longer), and a commit sealed by its contracts' marks
 * then opened as readers see it, before and after its subject is erased.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  AccountOpenedSchema,
  FundsDepositedSchema,
  OpenAccountSchema,
} from "../../events/gen/canon/bank/accounts/v1/accounts_pb.ts";
import { EventEnvelopeSchema } from "../../events/gen/canon/envelope/v1/envelope_pb.ts";
import { command } from "../../shared/domain/commands.ts";
import { buildCommit, type Commit, parseCommit } from "../../shared/events/envelope.ts";
import {
  type AggregateFold,
  aggregateProjection,
  changesNothing,
  evolveItem,
} from "../../shared/handlers/projection.ts";
import { erasureCommit } from "../../shared/privacy/erase.ts";
import { openCommandBody, openCommit, openEvent } from "../../shared/privacy/fields.ts";
import { ensureMasterKeyFile, fileKeyWrapper } from "../../shared/privacy/key-wrapper.ts";
import { type KeyItemStore, type SubjectKeyItem, subjectKeys } from "../../shared/privacy/keys.ts";
import { sealCommand, sealCommit } from "../../shared/privacy/seal.ts";
import { erasedText, openValue, PersonalDataError, sealedHeader, sealValue } from "../../shared/privacy/sealed.ts";

const key = randomBytes(32);
const header = { kind: "s" as const, subject: "acc-1", keyId: "k1" };

describe("a sealed value", () => {
  it("opens to its plaintext and holds none of it", () => {
    const sealed = sealValue(header, key, "Ada Lovelace");
    expect(sealed).not.toContain("Ada");
    expect(sealedHeader(sealed)).toEqual(header);
    expect(openValue(sealed, key)).toBe("Ada Lovelace");
  });

  it("refuses a changed payload, a moved header or another key, with a clear error", () => {
    const sealed = sealValue(header, key, "Ada Lovelace");
    const cut = sealed.lastIndexOf(".");
    const body = Buffer.from(sealed.slice(cut + 1), "base64url");
    body[14] = (body[14] as number) ^ 1;
    const altered = `${sealed.slice(0, cut)}.${body.toString("base64url")}`;
    expect(() => openValue(altered, key)).toThrow(PersonalDataError);
    expect(() => openValue(altered, key)).toThrow(/fails authentication: it was altered/);
    const moved = sealed.replace(
      Buffer.from("acc-1").toString("base64url"),
      Buffer.from("acc-2").toString("base64url"),
    );
    expect(() => openValue(moved, key)).toThrow(/fails authentication/);
    expect(() => openValue(sealed, randomBytes(32))).toThrow(/fails authentication/);
    expect(() => openValue("pd1.s.x", key)).toThrow(/not a sealed value/);
  });
});

/** A key item store in memory, counting its reads. */
function memoryItems(): KeyItemStore & { items: Map<string, SubjectKeyItem>; reads: number } {
  const items = new Map<string, SubjectKeyItem>();
  const store = {
    items,
    reads: 0,
    async read(subject: string) {
      store.reads += 1;
      return items.get(subject);
    },
    async create(item: SubjectKeyItem) {
      if (items.has(item.id)) return false;
      items.set(item.id, item);
      return true;
    },
  };
  return store;
}

const wrapper = () => fileKeyWrapper(ensureMasterKeyFile(join(mkdtempSync(join(tmpdir(), "canon-pd-")), "master.key")));

/** Erases a subject in the store as the erase step does: the key goes, the record stays. */
function erase(store: ReturnType<typeof memoryItems>, subject: string) {
  store.items.set(subject, { id: subject, erasedAt: new Date().toISOString(), erasedBy: "test" });
}

describe("the subject keys' cache", () => {
  it("keeps a key for its TTL, then reads again and sees the erasure", async () => {
    let now = 1_000;
    const store = memoryItems();
    const keys = subjectKeys({ items: store, wrapper: wrapper(), ttlMs: 5_000, now: () => now });
    const made = await keys.forSealing("acc-1");
    if (made === "erased") throw new Error("expected a key");
    const reads = store.reads;
    erase(store, "acc-1");
    now += 4_999;
    expect(await keys.forOpening("acc-1", made.keyId)).toEqual(made.key); // still cached
    expect(store.reads).toBe(reads);
    now += 2;
    expect(await keys.forOpening("acc-1", made.keyId)).toBe("erased"); // expired: read again
    expect(store.reads).toBe(reads + 1);
    expect(await keys.forSealing("acc-1")).toBe("erased"); // an erased subject never gets a new key
  });

  it("forgets a subject at once when told (its SubjectErased)", async () => {
    const store = memoryItems();
    const keys = subjectKeys({ items: store, wrapper: wrapper(), ttlMs: 60_000 });
    const made = await keys.forSealing("acc-1");
    if (made === "erased") throw new Error("expected a key");
    erase(store, "acc-1");
    keys.forget("acc-1");
    expect(await keys.forOpening("acc-1", made.keyId)).toBe("erased");
  });

  it("reads a subject once for concurrent callers, and its key unwraps after a restart", async () => {
    const store = memoryItems();
    const wrap = wrapper();
    const keys = subjectKeys({ items: store, wrapper: wrap });
    const [a, b] = await Promise.all([keys.forSealing("acc-1"), keys.forSealing("acc-1")]);
    expect(a).toEqual(b);
    const again = subjectKeys({ items: store, wrapper: wrap });
    if (a === "erased") throw new Error("expected a key");
    expect(await again.forOpening("acc-1", a.keyId)).toEqual(a.key);
  });
});

// The bank's contracts, from their schemas (owner is marked in accounts.proto).
const contracts = {
  events: {
    AccountOpened: { schema: AccountOpenedSchema, version: 2 },
    FundsDeposited: { schema: FundsDepositedSchema, version: 1 },
  },
  commands: { OpenAccount: command(OpenAccountSchema, (c) => c.accountId) },
};
const meta = {
  commandId: "cmd-1",
  attempt: 1,
  service: "accounts",
  bus: "core",
  aggregateType: "Account",
  aggregateId: "acc-1",
  expectedVersion: 0,
  correlationId: "cmd-1",
  causationId: "cmd-1",
  now: new Date("2026-01-01T00:00:00Z"),
};
const opened = (accountId = "acc-1") =>
  buildCommit("events", { ...meta, aggregateId: accountId }, [
    { type: "AccountOpened", data: { accountId, owner: "Ada Lovelace" } },
    { type: "FundsDeposited", data: { accountId, amountCents: 5 } },
  ]);

describe("a commit's personal data", () => {
  it("is sealed by the contracts' marks, lists what it sealed, and opens for readers", async () => {
    const store = memoryItems();
    const keys = subjectKeys({ items: store, wrapper: wrapper() });
    const sealed = await sealCommit(opened(), contracts, () => keys);
    const bytes = JSON.stringify(sealed);
    expect(bytes).not.toContain("Ada");
    expect(sealed.events[0]?.personaldata).toEqual(["owner"]);
    expect(sealed.events[1]).toEqual(opened().events[1]); // unmarked: untouched
    // Another language's Protobuf JSON parser reads it too (envelope.proto lists personaldata).
    expect(fromJson(EventEnvelopeSchema, sealed.events[0] as unknown as JsonValue).personaldata).toEqual(["owner"]);
    const read = await openCommit(parseCommit(bytes), () => keys); // survives the envelope check
    expect(read.events[0]?.data).toEqual({ accountId: "acc-1", owner: "Ada Lovelace" });
    expect(read.events[0]?.personaldata).toBeUndefined();
  });

  it("reads as erased once the key is gone, and an erased subject's new data is never stored", async () => {
    const store = memoryItems();
    const keys = () => subjectKeys({ items: store, wrapper: wrapper(), ttlMs: 0 });
    const shared = keys();
    const sealed = await sealCommit(opened(), contracts, () => shared);
    erase(store, "acc-1");
    expect((await openEvent(sealed.events[0] as Commit["events"][number], () => shared)).data.owner).toBe(erasedText);
    const after = await sealCommit(opened(), contracts, () => shared);
    expect(after.events[0]?.data.owner).toBe(erasedText);
    expect(after.events[0]?.personaldata).toBeUndefined();
  });

  it("seals a rejected command's marked fields by the command's marks", async () => {
    const store = memoryItems();
    const keys = subjectKeys({ items: store, wrapper: wrapper() });
    const payload = { type: "OpenAccount", accountId: "acc-1", owner: "Ada Lovelace" };
    const rejection = buildCommit("rejection", meta, [
      { type: "CommandRejected", data: { command: "OpenAccount", reason: "already open", payload } },
    ]);
    const sealed = await sealCommit(rejection, contracts, () => keys);
    expect(JSON.stringify(sealed)).not.toContain("Ada");
    expect(sealed.events[0]?.personaldata).toEqual(["payload.owner"]);
    expect((await openCommit(sealed, () => keys)).events[0]?.data.payload).toEqual(payload);
  });

  it("is refused when a listed field holds no sealed value (altered in transit)", async () => {
    const store = memoryItems();
    const keys = subjectKeys({ items: store, wrapper: wrapper() });
    const sealed = await sealCommit(opened(), contracts, () => keys);
    const event = sealed.events[0] as Commit["events"][number];
    await expect(openEvent({ ...event, data: { ...event.data, owner: "Mallory" } }, () => keys)).rejects.toThrow(
      /owner is listed as sealed but holds no sealed value/,
    );
  });
});

describe("a view's erase on SubjectErased", () => {
  interface Owner {
    readonly id: string;
    readonly owner: string;
    readonly version: number;
  }
  const definition = aggregateProjection<Owner>({
    name: "test.owners",
    events: ["AccountOpened"],
    evolve: (_item, event) => ({ id: event.subject, owner: String(event.data.owner), version: 0 }),
    erase: (item) => ({ ...item, owner: erasedText }),
  });
  const fold = definition.fold as AggregateFold<Owner>;
  const erased = erasureCommit("core", "acc-1", "2026-01-01T00:00:00.000Z").events[0] as Commit["events"][number];
  const item: Owner = { id: "acc-1", owner: "Ada Lovelace", version: 7 };

  it("blanks the item keyed by the subject and keeps its version", () => {
    expect(fold.handles(erased)).toBe(true);
    expect(fold.key(erased)).toBe("acc-1");
    expect(changesNothing(item, erased)).toBe(false);
    expect(evolveItem(fold, "acc-1", item, erased)).toEqual({ id: "acc-1", owner: erasedText, version: 7 });
  });

  it("creates nothing for a subject it holds no item of, and leaves views without erase alone", () => {
    expect(changesNothing(undefined, erased)).toBe(true);
    const plain = aggregateProjection<Owner>({ name: "test.plain", evolve: (i) => i as Owner })
      .fold as AggregateFold<Owner>;
    expect(plain.handles(erased)).toBe(false);
  });

  it("is one commit of the subject's own history, the same bytes each time", () => {
    const commit = erasureCommit("core", "acc-1", "2026-01-01T00:00:00.000Z");
    expect(commit).toMatchObject({ aggregateType: "Subject", aggregateId: "acc-1", expectedVersion: 0 });
    expect(commit.events.map((e) => [e.type, e.aggregateversion, e.data])).toEqual([
      ["SubjectErased", 1, { subjectId: "acc-1", erasedAt: "2026-01-01T00:00:00.000Z" }],
    ]);
    expect(JSON.stringify(erasureCommit("core", "acc-1", "2026-01-01T00:00:00.000Z"))).toBe(JSON.stringify(commit));
  });
});

describe("a queued command's personal data", () => {
  const spec = contracts.commands.OpenAccount;
  const message = (command: Record<string, unknown>) =>
    JSON.stringify({ commandId: "c-1", service: "accounts", aggregateId: "acc-1", command });

  it("is sealed by the API and opened by the command handler as sent", async () => {
    const keys = subjectKeys({ items: memoryItems(), wrapper: wrapper() });
    const command = { type: "OpenAccount", accountId: "acc-1", owner: "Ada Lovelace" };
    const sealed = await sealCommand(spec, command, () => keys);
    expect(sealed.personaldata).toEqual(["owner"]);
    const body = JSON.stringify({ ...JSON.parse(message(command)), ...sealed });
    expect(body).not.toContain("Ada");
    expect(JSON.parse(await openCommandBody(body, () => keys))).toEqual(JSON.parse(message(command)));
  });

  it("is refused when altered, and a body with nothing sealed passes as it is", async () => {
    const keys = subjectKeys({ items: memoryItems(), wrapper: wrapper() });
    const plain = message({ type: "Deposit", accountId: "acc-1", amountCents: 5 });
    expect(await openCommandBody(plain, () => keys)).toBe(plain);
    const altered = JSON.stringify({
      ...JSON.parse(message({ type: "OpenAccount", owner: "Mallory" })),
      personaldata: ["owner"],
    });
    await expect(openCommandBody(altered, () => keys)).rejects.toThrow(PersonalDataError);
  });
});
