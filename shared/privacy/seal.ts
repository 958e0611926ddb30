/**
 * The write side of personal data: the command handler seals the marked fields of the commits it
 * builds, by its contracts' marks (marks.ts), before anything is recorded or appended; readers
 * open them with fields.ts.
 */
import type { CommandSpecs } from "../domain/commands.ts";
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
      const due = fields.filter((f) => typeof container?.[f.field] === "string" && container[f.field] !== "");
      if (container === undefined || due.length === 0) return event;
      changed = true;
      const sealedData: Data = { ...container };
      const sealed: string[] = [];
      for (const mark of due) {
        const subject = container[mark.subjectField];
        if (typeof subject !== "string" || subject === "")
          throw new InvalidEventError(
            `${event.type}: ${mark.field} is personal data of ${mark.subjectField}, which is empty`,
          );
        const key = await keys().forSealing(subject);
        const path = at === "" ? mark.field : `${at}.${mark.field}`;
        if (key === "erased") {
          sealedData[mark.field] = erasedValue(mark.kind);
          continue;
        }
        sealedData[mark.field] = sealValue(
          { kind: mark.kind, subject, keyId: key.keyId },
          key.key,
          container[mark.field] as string,
        );
        sealed.push(path);
      }
      const data = at === "" ? sealedData : { ...event.data, [at]: sealedData };
      return { ...event, data, ...(sealed.length === 0 ? {} : { personaldata: sealed }) };
    }),
  );
  return changed ? { ...commit, events } : commit;
}
