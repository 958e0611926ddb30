/**
 * Event and command types come from the Protobuf schemas: the lists the runtime subscribes with
 * are the schemas' own, and a misspelled event type does not compile (`tsc -p .` checks the
 * `@ts-expect-error` lines below: each fails the type-check if it stops being an error).
 */
import { describe, expect, it } from "vitest";
import { accountContract } from "../../functions/accounts/contract.ts";
import {
  type AccountEvent,
  accountDecider,
  accountEventTypes,
  type MovementEvent,
  movementEventTypes,
} from "../../functions/accounts/decider.ts";
import { transferContract } from "../../functions/transfers/contract.ts";
import { transferEventTypes } from "../../functions/transfers/decider.ts";
import type { SagaEvent } from "../../functions/transfers/saga-reactor.ts";
import { type Decision, eventTypes, isEventOf } from "../../shared/domain/decider.ts";
import { buildCommit } from "../../shared/events/envelope.ts";

const accountEventSchemas = accountContract.events;
const transferEventSchemas = transferContract.events;

describe("event types from the schemas", () => {
  it("lists every event type of each aggregate's schemas, and no other", () => {
    expect([...accountEventTypes].sort()).toEqual(Object.keys(accountEventSchemas).sort());
    expect([...transferEventTypes].sort()).toEqual(Object.keys(transferEventSchemas).sort());
    expect(movementEventTypes).not.toContain("AccountOpened");
    expect(movementEventTypes).toHaveLength(accountEventTypes.length - 1);
  });

  it("reads an envelope as a typed event only when its type is one of the union's", () => {
    const [deposited, opened] = buildCommit(
      "events",
      {
        commandId: "c",
        attempt: 1,
        service: "accounts",
        bus: "core",
        aggregateType: "Account",
        aggregateId: "a",
        expectedVersion: 0,
        correlationId: "c",
        causationId: "c",
        now: new Date(0),
      },
      [
        { type: "FundsDeposited", data: { accountId: "a", amountCents: 5 } },
        { type: "AccountOpened", data: { accountId: "a", owner: "Ada" } },
      ],
    ).events;
    if (deposited === undefined || opened === undefined) throw new Error("two events expected");
    expect(isEventOf<MovementEvent>(opened, movementEventTypes)).toBe(false);
    expect(isEventOf<MovementEvent>(deposited, movementEventTypes)).toBe(true);
    if (isEventOf<MovementEvent>(deposited, movementEventTypes)) {
      const cents: number = deposited.data.amountCents; // typed by the schema: no cast
      expect(cents).toBe(5);
    }
  });

  it("makes a misspelled event type a type error", () => {
    // @ts-expect-error a decider cannot emit an event its schemas do not declare
    const misspelled: Decision<AccountEvent> = [{ type: "FundsDepositted", data: { accountId: "a", amountCents: 1 } }];
    // @ts-expect-error nor an event with a field its schema does not have
    const wrongField: Decision<AccountEvent> = [{ type: "FundsDeposited", data: { accountId: "a", amount: 1 } }];
    // @ts-expect-error nor a field of the wrong type (uint64 reads as a number)
    const wrongType: AccountEvent = { type: "FundsDeposited", data: { accountId: "a", amountCents: "1" } };
    // @ts-expect-error a fold cannot take an event the aggregate does not have
    accountDecider.evolve(accountDecider.initialState, { type: "TransferRequested", data: { transferId: "t" } });
    // @ts-expect-error an event type list names only the union's types…
    eventTypes<AccountEvent>({ ...Object.fromEntries(accountEventTypes.map((t) => [t, true])), FundsDepositted: true });
    // @ts-expect-error …and every one of them
    eventTypes<AccountEvent>({ AccountOpened: true });
    // @ts-expect-error a subscription names only types the consumer reads
    const subscription: SagaEvent["type"][] = ["TransferRequested", "TransferRequsted"];
    const switchOn = (event: AccountEvent) => {
      switch (event.type) {
        // @ts-expect-error a case that can never match
        case "FundsDepositted":
          return 1;
        default:
          return 0;
      }
    };
    expect([misspelled, wrongField, wrongType, subscription, switchOn]).toHaveLength(5);
  });
});
