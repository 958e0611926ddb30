/**
 * The parts a service is made of, as its user declares them: an aggregate (its Protobuf module and
 * its decider), projections and reactors. Declarations are plain values with pure functions: this
 * module imports types only, so a declaration pulls no runtime (no AWS SDK, no handler) into the
 * bundles that import it. The framework builds each part's Lambda entry from its declaration
 * (shared/entries/), and finds the part's module in its service's folder (`partModule`).
 */
import type { Decider } from "./domain/decider.ts";
import type { Contract } from "./domain/proto-contract.ts";
import type { NewEvent } from "./events/envelope.ts";
import type { Upcaster } from "./events/upcast.ts";
import type { CounterProjection } from "./handlers/counters.ts";
import type { DomainEvent, ProjectedEvent, VersionedItem } from "./handlers/projection.ts";
import type { CommandRequest } from "./handlers/reactor.ts";
import type { ProjectionDefinition, ReactorDefinition } from "./topology.ts";

/** The types a part's module needs, from one place. */
export type { CommandRequest, DomainEvent, ProjectedEvent };

/** A decider as a service declares it: its upcasters are applied to the events its state folds. */
// biome-ignore lint/suspicious/noExplicitAny: any command, event and state type
export interface DeciderPart<Command extends { type: string } = any, Event extends NewEvent = any, State = any>
  extends Decider<Command, Event, State> {
  /** Bring older event versions up to date before `evolve` sees them (events/upcasters.ts). @default none */
  readonly upcasters?: readonly Upcaster[];
}

/** A service's aggregate: its contract (contract.ts) and its decider (decider.ts). */
export interface AggregateDeclaration {
  readonly contract: Contract;
  readonly decider: DeciderPart;
}

interface PartOptions {
  /** Upcasters applied before the part sees an event (events/upcasters.ts). @default none */
  readonly upcasters?: readonly Upcaster[];
}

/**
 * A view with one item per aggregate: the events it folds and how each changes the item. The
 * runtime reads and writes the item (idempotent, conditional on the version it read).
 */
export interface AggregateView<Item extends VersionedItem, Event extends DomainEvent>
  extends Omit<ProjectionDefinition, "handler" | "events">,
    PartOptions {
  /** The event types it folds: the subscription (a misspelled type is a type error); "SubjectErased" with `erase`. */
  readonly events: readonly (Event["type"] | "SubjectErased")[];
  /** The item an event folds into. @default the event's aggregate id (its subject) */
  itemKey?(event: ProjectedEvent<Event>): string;
  /** Folds one event into the item (`undefined`: none yet); the runtime sets `id` and `version`. */
  evolve(item: Item | undefined, event: ProjectedEvent<Event>): Item;
  /** Items an event adds on its own (e.g. statement lines), each with a deterministic `id`. */
  facts?(event: ProjectedEvent<Event>): readonly Record<string, unknown>[];
  /**
   * Blanks what the item holds of a subject's personal data, on the subject's SubjectErased
   * (docs/privacy.md; list "SubjectErased" in `events`). @default none: erasures pass it by
   */
  erase?(item: Item, subject: string): Item;
  /** The receive at which a failing event is parked with its aggregate. @default 3 */
  readonly parkAfterReceives?: number;
}

/** A view of counters per key, fed by any number of aggregates (shared/handlers/counters.ts). */
export interface CounterView extends Omit<ProjectionDefinition, "handler">, PartOptions {
  readonly counters: Omit<CounterProjection, "name" | "events" | "upcasters">;
}

/** A projection declared as a value: the framework builds its Lambda entry. */
// biome-ignore lint/suspicious/noExplicitAny: a service holds views of every item and event type
export type ProjectionPart = AggregateView<any, any> | CounterView;

/** A reactor (law E): the events it listens to, and the commands each one asks for (pure). */
export interface ReactorPart<Event extends DomainEvent = DomainEvent>
  extends Omit<ReactorDefinition, "handler" | "events">,
    PartOptions {
  readonly events: readonly Event["type"][];
  react(event: ProjectedEvent<Event>): readonly CommandRequest[];
}

/** Declares a view with one item per aggregate (typed by its item and its events). */
export function projection<Item extends VersionedItem, Event extends DomainEvent>(
  view: AggregateView<Item, Event>,
): AggregateView<Item, Event> {
  return view;
}

/** Declares a view of counters per key. */
export function counters(view: CounterView): CounterView {
  return view;
}

/** Declares a reactor (typed by the events it listens to). */
export function reactor<Event extends DomainEvent>(part: ReactorPart<Event>): ReactorPart<Event> {
  return part;
}

/** Whether a declared projection is a counter view. */
export function isCounterView(part: ProjectionPart): part is CounterView {
  return "counters" in part;
}

/** The kinds of Lambda entry the framework builds from a declaration. */
export type PartKind =
  | "command-handler"
  | "state"
  | "projection"
  | "replayer"
  | "reactor"
  | "api"
  | "rpc"
  | "relay"
  | "archiver";

/**
 * Where a part's module is, in its service's folder (paths from the repository root): the
 * contract in `contract.ts`, the decider in `decider.ts`, a projection in `<name>-projection.ts`,
 * a reactor in `<name>-reactor.ts`.
 */
export function partModule(
  service: string,
  part: { readonly kind: "contract" | "decider" } | { readonly kind: "projection" | "reactor"; readonly name: string },
  functionsDir = "functions",
): string {
  if ("name" in part) return `${functionsDir}/${service}/${part.name}-${part.kind}.ts`;
  return `${functionsDir}/${service}/${part.kind}.ts`;
}
