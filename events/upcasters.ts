/**
 * The bank's upcasters: how older event versions read as the current ones. Every reader of the
 * bus (projections, reactors, replay) applies them, so stored events are never rewritten.
 */
import type { Upcaster } from "../shared/events/upcast.ts";

export const upcasters: readonly Upcaster[] = [
  {
    // AccountOpened v1 → v2: `ownerName` became `owner`.
    type: "AccountOpened",
    fromVersion: 1,
    up: ({ ownerName, ...rest }) => ({ ...rest, owner: ownerName }),
  },
];
