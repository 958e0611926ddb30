/**
 * Fault injection at the AWS SDK, for the soak only: throttling, timeouts and connection resets
 * thrown below the SDK's retry middleware, so the SDK retries them as it retries the real ones
 * and the code above sees what AWS would show it. Off unless `CANON_FAULTS` has `sdk:<p>` (a
 * probability per call attempt, see shared/runner/faults.ts); then every client clients.ts makes,
 * in every function and in the API, gets it.
 *
 * - throttle: refused before it is sent (ProvisionedThroughputExceededException, the name Kinesis
 *   and DynamoDB use; the SDK classifies it as throttling for every service);
 * - timeout / reset: the request IS carried out, then its answer is lost (TimeoutError,
 *   ECONNRESET): the SDK sends it again, so the code meets its own write twice — a PutRecords
 *   twice on the stream, a conditional write failing its condition on the retry.
 * A ReceiveMessage only ever gets a throttle: a lost answer would hide its messages for their
 * whole visibility timeout, which makes the run slow rather than harder.
 */
import { functionRandom } from "../runner/faults.ts";

export type SdkFaultKind = "throttle" | "timeout" | "reset";

interface Stack {
  middlewareStack: {
    add(middleware: (next: (args: unknown) => Promise<unknown>, context: object) => unknown, options: object): void;
  };
}

const listeners: ((kind: SdkFaultKind) => void)[] = [];
const counts: Record<SdkFaultKind, number> = { throttle: 0, timeout: 0, reset: 0 };

/** Tells `listener` of every fault injected in this thread (the local runner's workers report them). */
export function onSdkFault(listener: (kind: SdkFaultKind) => void): void {
  listeners.push(listener);
}

/** The faults injected in this thread so far. */
export function sdkFaultCounts(): Readonly<Record<SdkFaultKind, number>> {
  return { ...counts };
}

/** The per-attempt probability and seed from a CANON_FAULTS value, or undefined when off. */
export function sdkFaultSettings(text: string | undefined): { probability: number; seed: number } | undefined {
  if (text === undefined) return undefined;
  const parts = new Map(
    text.split(",").map((part) => {
      const at = part.indexOf(":");
      return [part.slice(0, at < 0 ? undefined : at).trim(), at < 0 ? "" : part.slice(at + 1).trim()] as const;
    }),
  );
  const probability = Number(parts.get("sdk") ?? 0);
  if (!(probability > 0)) return undefined;
  return { probability, seed: Number(parts.get("seed") ?? 1) };
}

let random: (() => number) | undefined;

/** Adds the fault middleware to a client when `CANON_FAULTS` asks for SDK faults; otherwise does nothing. */
export function injectSdkFaults<T>(client: T, who: string): T {
  const settings = sdkFaultSettings(process.env.CANON_FAULTS);
  if (settings === undefined) return client;
  random ??= functionRandom(settings.seed, `sdk:${who}`);
  const draw = random;
  (client as unknown as Stack).middlewareStack.add(
    (next, context) => async (args: unknown) => {
      if (draw() >= settings.probability) return next(args);
      const { commandName } = context as { commandName?: string };
      const roll = draw();
      const kind: SdkFaultKind =
        commandName === "ReceiveMessageCommand" || roll < 0.5 ? "throttle" : roll < 0.75 ? "timeout" : "reset";
      counts[kind] += 1;
      for (const listener of listeners) listener(kind);
      if (kind === "throttle") {
        throw Object.assign(new Error("Rate exceeded (injected by CANON_FAULTS)"), {
          name: "ProvisionedThroughputExceededException",
          $fault: "client",
          $metadata: { httpStatusCode: 400 },
        });
      }
      await next(args);
      if (kind === "timeout") {
        throw Object.assign(new Error("answer lost after the request was carried out (injected)"), {
          name: "TimeoutError",
        });
      }
      throw Object.assign(new Error("socket hang up after the request was carried out (injected)"), {
        code: "ECONNRESET",
      });
    },
    // Below the SDK's retry middleware (finalizeRequest), so its retry strategy handles these.
    { step: "deserialize", name: "canonSdkFaults", override: true },
  );
  return client;
}
