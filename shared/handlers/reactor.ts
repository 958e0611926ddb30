/**
 * The reactor runtime (law E): events from the reactor's FIFO queue, turned into commands
 * for services' command queues. A reactor's `react` is pure; each command's id is derived from
 * the cause (reactor, event id, position), so a redelivered event re-sends the same command ids,
 * which the FIFO queue and the command handler's outcome table absorb: a step is never taken twice.
 */
import { processPartialResponse, SqsFifoPartialProcessorAsync } from "@aws-lambda-powertools/batch";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import type { Context, SQSEvent, SQSHandler, SQSRecord } from "aws-lambda";
import { sqsClient } from "../aws/clients.ts";
import type { CommandMessage } from "../domain/command-message.ts";
import { type CommandSpecs, validateCommand } from "../domain/commands.ts";
import { deterministicId } from "../domain/ids.ts";
import { requireEnv } from "../env.ts";
import { type EventEnvelope, readEvent } from "../events/envelope.ts";
import { type Upcaster, upcast } from "../events/upcast.ts";
import { envNames } from "../plan.ts";
import { openEvent } from "../privacy/fields.ts";
import { flushingTelemetry } from "../telemetry/emitter.ts";
import { reactedHop } from "../telemetry/subscriber-hops.ts";

/** A command a reactor asks for: which service, and the command with its `type`. */
export interface CommandRequest {
  readonly service: string;
  readonly command: { readonly type: string } & Record<string, unknown>;
}

export interface ReactorDefinition {
  readonly name: string;
  /** Pure: the commands that follow from one event (often none). */
  react(event: EventEnvelope): readonly CommandRequest[];
}

/** Thrown when a reactor asks for a command its target's contract refuses: a bug, not input. */
export class InvalidReactionError extends Error {
  override name = "InvalidReactionError";
  readonly code = "invalid_reaction";
}

/** Builds a reactor's Lambda handler; `contracts` validates what it sends, as the API does. */
export function reactorHandler(
  definition: ReactorDefinition,
  contracts: Readonly<Record<string, CommandSpecs>>,
  options: { readonly upcasters?: readonly Upcaster[] } = {},
): SQSHandler {
  const recordHandler = async (record: SQSRecord) => {
    const event = upcast(await openEvent(await readEvent(record.body)), options.upcasters ?? []);
    const hop = reactedHop(definition.name, record, event);
    const messages = commandsFor(definition, contracts, event, hop.traceparent);
    for (const message of messages) {
      await sqsClient().send(
        new SendMessageCommand({
          QueueUrl: requireEnv(envNames.commandQueueUrl(message.service)),
          MessageBody: JSON.stringify(message),
          MessageGroupId: message.aggregateId,
          MessageDeduplicationId: message.commandId,
        }),
      );
    }
    hop.done();
  };
  return flushingTelemetry(async (event: SQSEvent, context: Context) =>
    processPartialResponse(event, recordHandler, new SqsFifoPartialProcessorAsync(), {
      context,
      skipGroupOnError: true,
    }),
  );
}

/**
 * The command messages that follow from an event, with ids derived from it (pure); they carry
 * `traceparent` (the reactor's hop in the event's trace) when given.
 */
export function commandsFor(
  definition: ReactorDefinition,
  contracts: Readonly<Record<string, CommandSpecs>>,
  event: EventEnvelope,
  traceparent?: string,
): CommandMessage[] {
  return definition.react(event).map((request, index) => {
    const contract = contracts[request.service];
    if (contract === undefined)
      throw new InvalidReactionError(`${definition.name}: no contract for "${request.service}"`);
    const { type, ...payload } = request.command;
    const validation = validateCommand(contract, type, payload);
    if (!validation.ok) throw new InvalidReactionError(`${definition.name}: ${type} is invalid: ${validation.error}`);
    return {
      commandId: deterministicId("reactor", definition.name, event.id, String(index)),
      service: request.service,
      command: validation.command,
      aggregateId: validation.aggregateId,
      receivedAt: event.time,
      correlationId: event.correlationid,
      causationId: event.id,
      ...(traceparent === undefined ? {} : { traceparent }),
    };
  });
}
