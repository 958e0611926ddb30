/**
 * fauxqs 2.4 hands out at most ONE message of a FIFO message group per ReceiveMessage (its
 * `dequeueFifo` breaks out of the group after the first message, although its comment and its
 * per-group in-flight counter are written for several). SQS returns as many of a group's messages
 * as fit in the batch, in order, and a command handler's group commit depends on it: one hot
 * aggregate would otherwise move one command per round trip. This takes the `break` out of that
 * one method, once, in the emulator's own process; if a fauxqs release changes the method, the
 * patch says so and leaves it alone (test/integration/fifo-batches.test.ts then fails).
 */
import { randomUUID } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const oneMessageAGroup =
  /(this\.fifoLockedGroups\.set\(groupId, \(this\.fifoLockedGroups\.get\(groupId\) \?\? 0\) \+ 1\);\s*)break;/;

/** Makes fauxqs's FIFO receive take several messages of one group, as SQS does. */
export async function receiveWholeFifoGroups(): Promise<void> {
  // The package exports only its entry point; the queue class is one folder down from it.
  const entry = fileURLToPath(import.meta.resolve("fauxqs"));
  const store = (await import(pathToFileURL(join(dirname(entry), "sqs", "sqsStore.js")).href)) as {
    SqsQueue: { prototype: Record<string, unknown> };
  };
  const method = store.SqsQueue.prototype.dequeueFifo;
  if (typeof method !== "function") throw new Error("fauxqs: SqsQueue.dequeueFifo not found; check fauxqs-fifo.ts");
  const source = method.toString();
  if (!oneMessageAGroup.test(source)) {
    console.error("fauxqs-fifo: dequeueFifo no longer matches; FIFO receives left as fauxqs makes them");
    return;
  }
  // The method's own text without the `break`; `randomUUID` is the one name it takes from its module.
  const body = source.replace(oneMessageAGroup, "$1").replace(/^dequeueFifo\s*/, "function ");
  store.SqsQueue.prototype.dequeueFifo = new Function("randomUUID", `return ${body}`)(randomUUID);
}
