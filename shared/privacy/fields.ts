/**
 * The read side of personal data: every reader opens an event's sealed fields (`openEvent`,
 * `openCommit`) before user code sees it (the command handler seals them: seal.ts). A sealed
 * event lists its sealed fields in the `personaldata` extension (paths in its data: `owner`, or
 * `payload.owner` for a CommandRejected's command), so a reader opens exactly those and nothing
 * that merely looks sealed. The command handler opens what the API sealed in a command the same
 * way (`openCommandBody`). It needs no contract, so consumers carry no Protobuf runtime.
 */
import type { Commit, EventEnvelope } from "../events/envelope.ts";
import { type SubjectKeys, subjectKeysFromEnv } from "./keys.ts";
import { erasedValue, isSealed, openValue, PersonalDataError, sealedHeader } from "./sealed.ts";

type Data = Record<string, unknown>;

/** The event the erase step puts on the bus (shared/privacy/erase.ts); its `subject` is the erased subject. */
export const subjectErasedType = "SubjectErased";

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
      opened = await openSealed(value, keys);
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

/**
 * A command message's body (JSON) with the fields the API sealed opened, and their list dropped:
 * what the command handler validates and decides on. A body without sealed fields comes back as
 * it is. Throws `PersonalDataError` on an altered value (the message is not a command then).
 */
export async function openCommandBody(body: string, keys: () => SubjectKeys = subjectKeysFromEnv): Promise<string> {
  if (!body.includes('"personaldata"')) return body;
  let message: Data;
  try {
    message = JSON.parse(body) as Data;
  } catch {
    return body; // not JSON: refused as malformed by the handler's own parsing
  }
  const sealed = message.personaldata;
  const command = message.command as Data | undefined;
  if (!Array.isArray(sealed) || typeof command !== "object" || command === null) return body;
  const { personaldata: _listed, ...rest } = message;
  const opened: Data = { ...command };
  for (const field of sealed) {
    const value = typeof field === "string" ? command[field] : undefined;
    if (!isSealed(value))
      throw new PersonalDataError(`command message: ${String(field)} is listed as sealed but holds no sealed value`);
    opened[field as string] = await openSealed(value, keys);
  }
  return JSON.stringify({ ...rest, command: opened });
}

/** One sealed value's plaintext, or its kind's erased marker once the key that sealed it is gone. */
async function openSealed(value: string, keys: () => SubjectKeys): Promise<string> {
  const header = sealedHeader(value);
  const key = await keys().forOpening(header.subject, header.keyId);
  return key === "erased" ? erasedValue(header.kind) : openValue(value, key);
}

/** A reader without the subject keys configured has nothing cached to forget. */
function forgetIfLoaded(keys: () => SubjectKeys, subject: string): void {
  try {
    keys().forget(subject);
  } catch (error) {
    if (!(error instanceof PersonalDataError)) throw error;
  }
}
