/**
 * What personal data costs per event, in process (docs/privacy.md): sealing an AccountOpened's
 * owner as the command handler does (`sealCommit`, its subject's key cached) and opening it as a
 * reader does (`openEvent`, key cached), against building the same commit and JSON-parsing it.
 * Key reads (one GetItem and one KMS Decrypt per subject per cache TTL) are not in the figure: they
 * are per subject, not per event. CPU time, which a loaded machine inflates less than wall time.
 * Run: `node bench/privacy.ts [events]`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AccountOpenedSchema,
  FundsDepositedSchema,
  OpenAccountSchema,
} from "../events/gen/canon/bank/accounts/v1/accounts_pb.ts";
import { command } from "../shared/domain/commands.ts";
import { buildCommit, type Commit } from "../shared/events/envelope.ts";
import { openEvent } from "../shared/privacy/fields.ts";
import { ensureMasterKeyFile, fileKeyWrapper } from "../shared/privacy/key-wrapper.ts";
import { type SubjectKeyItem, subjectKeys } from "../shared/privacy/keys.ts";
import { sealCommit } from "../shared/privacy/seal.ts";

const events = Number(process.argv[2] ?? 50_000);
const subjects = 1_000;
const dir = mkdtempSync(join(tmpdir(), "canon-privacy-bench-"));
const items = new Map<string, SubjectKeyItem>();
const keys = subjectKeys({
  items: {
    read: async (subject) => items.get(subject),
    async create(item) {
      if (items.has(item.id)) return false;
      items.set(item.id, item);
      return true;
    },
  },
  wrapper: fileKeyWrapper(ensureMasterKeyFile(join(dir, "master.key"))),
  ttlMs: 3_600_000,
});
const contracts = {
  events: {
    AccountOpened: { schema: AccountOpenedSchema, version: 2 },
    FundsDeposited: { schema: FundsDepositedSchema, version: 1 },
  },
  commands: { OpenAccount: command(OpenAccountSchema, (c) => c.accountId) },
};
const commitFor = (i: number): Commit => {
  const accountId = `acc-${i % subjects}`;
  return buildCommit(
    "events",
    {
      commandId: `cmd-${i}`,
      attempt: 1,
      service: "accounts",
      bus: "core",
      aggregateType: "Account",
      aggregateId: accountId,
      expectedVersion: 0,
      correlationId: `cmd-${i}`,
      causationId: `cmd-${i}`,
      now: new Date(),
    },
    [{ type: "AccountOpened", data: { accountId, owner: `Owner number ${i}, of some street` } }],
  );
};

const perEventUs = (ms: number) => ((ms * 1000) / events).toFixed(2);
/** CPU time (user + system) in ms since `from`: a loaded machine inflates it less than wall time. */
const cpuMs = (from: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1000;
};
// Warm: every subject's key made and cached, the JIT settled.
for (let i = 0; i < subjects * 2; i++)
  await openEvent(
    (await sealCommit(commitFor(i), contracts, () => keys)).events[0] as Commit["events"][number],
    () => keys,
  );

let cpu = process.cpuUsage();
const plain: string[] = [];
for (let i = 0; i < events; i++) plain.push(JSON.stringify(commitFor(i)));
const buildMs = cpuMs(cpu);

cpu = process.cpuUsage();
const sealed: string[] = [];
for (let i = 0; i < events; i++) sealed.push(JSON.stringify(await sealCommit(commitFor(i), contracts, () => keys)));
const sealMs = cpuMs(cpu) - buildMs;

cpu = process.cpuUsage();
for (const bytes of plain) JSON.parse(bytes);
const parseMs = cpuMs(cpu);

cpu = process.cpuUsage();
for (const bytes of sealed)
  await openEvent((JSON.parse(bytes) as Commit).events[0] as Commit["events"][number], () => keys);
const openMs = cpuMs(cpu) - parseMs;

const grow = sealed.reduce((n, s) => n + s.length, 0) / plain.reduce((n, s) => n + s.length, 0);
console.log(
  `${events} AccountOpened events, ${subjects} subjects, keys cached, CPU time (Node ${process.versions.node})`,
);
console.log(`seal: ${perEventUs(sealMs)} µs/event beyond building the commit (${perEventUs(buildMs)} µs)`);
console.log(`open: ${perEventUs(openMs)} µs/event beyond JSON.parse of the commit (${perEventUs(parseMs)} µs)`);
console.log(`commit bytes: ×${grow.toFixed(2)} (owner of ~32 characters sealed)`);
rmSync(dir, { recursive: true, force: true });
