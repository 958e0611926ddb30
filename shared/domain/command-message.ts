/**
 * The message that carries a command from the API (or a reactor) to a service's command
 * queue. Validated again on arrival: a queue is an entry point too.
 */
import { z } from "zod";

const id = z.string().min(1).max(200);

export const commandMessageSchema = z.object({
  commandId: id,
  service: z.string().min(1).max(100),
  command: z.looseObject({ type: z.string().min(1).max(100) }),
  aggregateId: id,
  receivedAt: z.iso.datetime(),
  correlationId: id,
  causationId: id,
});

export type CommandMessage = z.infer<typeof commandMessageSchema>;
