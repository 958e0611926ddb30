/**
 * The one step on each side of the bus: the command handler seals the marked fields of the
 * commits it builds (`sealCommit`), and every reader opens them (`openEvent`, `openCommit`)
 * before user code sees an event. A sealed event lists its sealed fields in the `personaldata`
 * extension (paths in its data: `owner`, or `payload.owner` for a CommandRejected's command),
 * so a reader opens exactly those and nothing that merely looks sealed.
 */
import type { CommandSpecs } from "../domain/commands.ts";
import type { Commit, EventEnvelope } from "../events/envelope.ts";
import { type EventSchemas, InvalidEventError } from "../events/schemas.ts";
import { type SubjectKeys, subjectKeysFromEnv } from "./keys.ts";
import { type PersonalField, personalFieldsOf } from "./marks.ts";
import { erasedValue, isSealed, openValue, PersonalDataError, sealedHeader, sealValue } from "./sealed.ts";

/** The event the erase step puts on the bus (shared/privacy/erase.ts); its `subject` is the erased subject. */
export const subjectErasedType = "SubjectErased";

/** The contracts whose marks say what to seal. */
export interface SealingContracts {
  readonly events: EventSchemas;
  readonly commands: CommandSpecs;
}

type Data = Record<string, unknown>;

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

/**
 * Opens an event's sealed fields: the plaintext while its subject's key exists, the erased
 * marker after. The opened event no longer lists `personaldata`. A SubjectErased drops its
 * subject's key from this process's cache. Throws `PersonalDataError` on an altered value.
 */
export async function openEvent(
  event: EventEnvelope,
  keys: () => SubjectKeys = subjectKeysFromEnv,
): Promise<EventEnvelope> {
  if (event.type === subjectErasedType && event.personaldata === undefined) {
    forgetIfLoaded(keys, event.subject);
    return event;
  }
  if (event.personaldata === undefined) return event;
  const { personaldata, ...rest } = event;
  let data: Data = { ...event.data };
  for (const path of personaldata) {
    const [head, field] = path.includes(".") ? path.split(".", 2) : [undefined, path];
    const container = (head === undefined ? data : data[head]) as Data | undefined;
    const value = container?.[field as string];
    if (!isSealed(value))
      throw new PersonalDataError(`event ${event.id}: ${path} is listed as sealed but holds no sealed value`);
    let opened: string;
    try {
      const header = sealedHeader(value);
      const key = await keys().forOpening(header.subject, header.keyId);
      opened = key === "erased" ? erasedValue(header.kind) : openValue(value, key);
    } catch (error) {
      if (error instanceof PersonalDataError) error.message = `event ${event.id}, ${path}: ${error.message}`;
      throw error;
    }
    const next = { ...container, [field as string]: opened };
    data = head === undefined ? next : { ...data, [head]: next };
  }
  return { ...rest, data };
}

/** Whether `openEvent` has anything to do for an event (a cheap test for hot loops). */
export function needsOpening(event: EventEnvelope): boolean {
  return event.personaldata !== undefined || event.type === subjectErasedType;
}

/** Opens every event of a commit (the archive's readers: replay, SQL, the console's tail). */
export async function openCommit(commit: Commit, keys: () => SubjectKeys = subjectKeysFromEnv): Promise<Commit> {
  if (!commit.events.some(needsOpening)) return commit;
  return { ...commit, events: await Promise.all(commit.events.map((event) => openEvent(event, keys))) };
}

/** A reader without the subject keys configured has nothing cached to forget. */
function forgetIfLoaded(keys: () => SubjectKeys, subject: string): void {
  try {
    keys().forget(subject);
  } catch (error) {
    if (!(error instanceof PersonalDataError)) throw error;
  }
}
