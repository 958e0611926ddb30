/**
 * `given(events).when(command).thenEmits(events)` (or `.thenRejects(reason)`) for deciders: a test reads as the
 * specification of one rule.
 */
import { expect } from "vitest";
import type { CommandContext, Decider, Decision } from "../../shared/domain/decider.ts";
import type { NewEvent } from "../../shared/events/envelope.ts";

const context: CommandContext = { commandId: "cmd-1", receivedAt: new Date("2026-01-02T03:04:05Z") };

export function specFor<Command extends { type: string }, Event extends NewEvent, State>(
  decider: Decider<Command, Event, State>,
) {
  return {
    given(history: readonly Event[]) {
      const state = history.reduce(decider.evolve, decider.initialState);
      return {
        when(command: Command) {
          const decision: Decision<Event> = decider.decide(command, state, context);
          return {
            thenEmits(expected: readonly Event[]) {
              expect(decision).toEqual(expected);
            },
            thenRejects(reason: string | RegExp) {
              expect(Array.isArray(decision)).toBe(false);
              expect((decision as { reason: string }).reason).toMatch(reason);
            },
          };
        },
        thenState(expected: State) {
          expect(state).toEqual(expected);
        },
      };
    },
  };
}
