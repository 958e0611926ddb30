/** `canon subject erase|show`: crypto-shred a subject's personal data; see its record (docs/privacy.md). */
import { hostname, userInfo } from "node:os";
import { resolve } from "node:path";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { app } from "../../functions/app.ts";
import { dynamoClient } from "../../shared/aws/clients.ts";
import { eraseSubject, keyCacheTtlFromEnv } from "../../shared/privacy/erase.ts";
import { localEraseTargets } from "../../shared/privacy/erase-api.ts";
import type { SubjectKeyItem } from "../../shared/privacy/keys.ts";
import { parseCommandLine } from "./cli.ts";
import { connect } from "./connect.ts";

export const subjectUsage = `canon subject — the personal data of one subject (docs/privacy.md)

Usage: canon subject erase <subjectId> [--reason <text>] [options]
       canon subject show <subjectId> [options]

erase   Deletes the subject's data key and records the erasure (who, when, why); then, once
        every function's key cache has let the key go (CANON_KEY_CACHE_TTL_MS, 20 s by
        default), puts a SubjectErased event on each bus the services write to, so views
        blank what they derived. From the deletion on, every reader — views, replays, warm-ups,
        rebuilds, SQL, the tail — reads the subject's personal fields as "[erased]". The
        archive is not rewritten. Erasing again changes nothing and re-sends the same event.
show    The subject's record: whether it has a key (since when), or when and by whom it was erased.

Options:
  --reason <text>   erase: why (a ticket or request id), kept with the record
  --by <name>       erase: who asks (default: user@host)
  --data-dir <dir>  The data folder of the running \`canon dev\` (default: .canon/data)
  --json            Print JSON
  -h, --help        Show this help

Exit status: 0 done, 1 failed, 2 usage.`;

const subjectLine = {
  name: "canon subject",
  usage: subjectUsage,
  options: {
    reason: { type: "string" },
    by: { type: "string" },
    "data-dir": { type: "string" },
    json: { type: "boolean", default: false },
  },
  actions: { erase: ["<subjectId>"], show: ["<subjectId>"] },
} as const;

export async function subjectCommand(args: string[]): Promise<number> {
  const line = parseCommandLine(subjectLine, args);
  if (typeof line === "number") return line;
  const { values, action } = line;
  const subject = line.operands[0] as string;
  const { plan, resources } = await connect(resolve(values["data-dir"] ?? ".canon/data"));
  const keysTable = resources.subjectKeysTable as string;
  try {
    if (action === "show") {
      const item = (await dynamoClient().send(new GetCommand({ TableName: keysTable, Key: { id: subject } }))).Item as
        | SubjectKeyItem
        | undefined;
      const record = describe(subject, item);
      console.log(values.json ? JSON.stringify(record) : record.text);
      return 0;
    }
    const ttl = keyCacheTtlFromEnv();
    if (!values.json)
      console.error(`canon subject: erasing ${subject}; the event follows in ${Math.ceil(ttl / 1000)} s`);
    const erasure = await eraseSubject({
      keysTable,
      subject,
      by: values.by ?? `${userInfo().username}@${hostname()}`,
      ...(values.reason === undefined ? {} : { reason: values.reason }),
      buses: localEraseTargets(plan, resources, [...new Set(app.services.map((s) => s.bus))]),
      cacheTtlMs: ttl,
    });
    if (values.json) console.log(JSON.stringify(erasure));
    else
      console.log(
        `${subject}: ${erasure.already ? "already erased" : "erased"} at ${erasure.erasedAt} by ${erasure.erasedBy}; SubjectErased sent (${erasure.commitIds.join(", ")})`,
      );
    return 0;
  } catch (error) {
    console.error(`canon subject ${action}: ${(error as Error).message}`);
    return 1;
  }
}

function describe(subject: string, item: SubjectKeyItem | undefined) {
  if (item === undefined) return { subject, state: "unknown", text: `${subject}: no personal data sealed for it` };
  if (item.erasedAt !== undefined)
    return {
      subject,
      state: "erased",
      erasedAt: item.erasedAt,
      erasedBy: item.erasedBy,
      erasedFor: item.erasedFor,
      text: `${subject}: erased at ${item.erasedAt} by ${item.erasedBy}${item.erasedFor ? ` (${item.erasedFor})` : ""}`,
    };
  return { subject, state: "live", since: item.createdAt, text: `${subject}: has a data key since ${item.createdAt}` };
}
