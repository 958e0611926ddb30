/**
 * The write side of personal data: the API seals the marked fields of the commands it queues, and
 * the command handler those of the commits it builds, by the contracts' marks (marks.ts), before
 * anything is recorded, queued or appended; readers open them with fields.ts.
 */
import type { CommandSpec, CommandSpecs } from "../domain/commands.ts";
import type { Commit, EventEnvelope } from "../events/envelope.ts";
import { type EventSchemas, InvalidEventError } from "../events/schemas.ts";
import { type SubjectKeys, subjectKeysFromEnv } from "./keys.ts";
import { type PersonalField, personalFieldsOf } from "./marks.ts";
import { erasedValue, sealValue } from "./sealed.ts";

type Data = Record<string, unknown>;

/** The contracts whose marks say what to seal. */
export interface SealingContracts {
  readonly events: EventSchemas;
  readonly commands: CommandSpecs;
}

/** The marked fields of an event's data, with the path prefix where they sit (a rejection's command). */
function marksOf(contracts: SealingContracts, event: EventEnvelope): { at: string; fields: readonly PersonalField[] } {
  if (event.type === "CommandRejected") {
    const type = (event.data.payload as Data | undefined)?.type;
    const spec =
      typeof type === "string" && Object.hasOwn(contracts.commands, type) ? contracts.commands[type] : undefined;
    return { at: "payload", fields: spec === undefined ? [] : personalFieldsOf(spec.schema) };
  }
  const entry = Object.hasOwn(contracts.events, event.type) ? contracts.events[event.type] : undefined;
  return { at: "", fields: entry === undefined ? [] : personalFieldsOf(entry.schema) };
}

/** Seals the marked fields of one object (an event's data, a command); undefined if none is due. */
async function sealFields(
  container: Data | undefined,
  fields: readonly PersonalField[],
  what: string,
  keys: () => SubjectKeys,
): Promise<{ readonly data: Data; readonly sealed: readonly string[] } | undefined> {
  const due = fields.filter((f) => typeof container?.[f.field] === "string" && container[f.field] !== "");
  if (container === undefined || due.length === 0) return undefined;
  const data: Data = { ...container };
  const sealed: string[] = [];
  for (const mark of due) {
    const subject = container[mark.subjectField];
    if (typeof subject !== "string" || subject === "")
      throw new InvalidEventError(`${what}: ${mark.field} is personal data of ${mark.subjectField}, which is empty`);
    const key = await keys().forSealing(subject);
    if (key === "erased") {
      data[mark.field] = erasedValue(mark.kind);
      continue;
    }
    data[mark.field] = sealValue(
      { kind: mark.kind, subject, keyId: key.keyId },
      key.key,
      container[mark.field] as string,
    );
    sealed.push(mark.field);
  }
  return { data, sealed };
}

/**
 * Seals the marked fields of a commit's events with their subjects' keys (made on first use).
 * A subject already erased gets the erased marker, never a new key. Unmarked commits come back
 * as they are, without a key read.
 */
export async function sealCommit(
  commit: Commit,
  contracts: SealingContracts,
  keys: () => SubjectKeys = subjectKeysFromEnv,
): Promise<Commit> {
  let changed = false;
  const events = await Promise.all(
    commit.events.map(async (event) => {
      if (event.personaldata !== undefined) return event; // sealed already
      const { at, fields } = marksOf(contracts, event);
      const container = (at === "" ? event.data : event.data[at]) as Data | undefined;
      const done = await sealFields(container, fields, event.type, keys);
      if (done === undefined) return event;
      changed = true;
      const data = at === "" ? done.data : { ...event.data, [at]: done.data };
      const sealed = done.sealed.map((field) => (at === "" ? field : `${at}.${field}`));
      return { ...event, data, ...(sealed.length === 0 ? {} : { personaldata: sealed }) };
    }),
  );
  return changed ? { ...commit, events } : commit;
}

/**
 * Seals a command's marked fields before it goes on its service's command queue (the API), so the
 * queue and its dead-letter queue hold no plaintext; `personaldata` names the sealed fields, and
 * the command handler opens them first (fields.ts, `openCommandBody`).
 */
export async function sealCommand<Command extends { readonly type: string }>(
  spec: CommandSpec | undefined,
  command: Command,
  keys: () => SubjectKeys = subjectKeysFromEnv,
): Promise<{ readonly command: Command; readonly personaldata?: readonly string[] }> {
  const done =
    spec === undefined ? undefined : await sealFields(command, personalFieldsOf(spec.schema), command.type, keys);
  if (done === undefined) return { command };
  return { command: done.data as Command, ...(done.sealed.length === 0 ? {} : { personaldata: done.sealed }) };
}
