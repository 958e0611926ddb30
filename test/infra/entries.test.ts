/**
 * CDK builds each declared part's function from the entry the kit generates, and refuses at
 * synth a part whose module is not where its name says (shared/parts.ts, partModule).
 */
import { describe, expect, it } from "vitest";
import { balances } from "../../functions/accounts/balances-projection.ts";
import { app } from "../../functions/app.ts";
import type { AppDefinition } from "../../shared/topology.ts";
import { synthesize } from "./support.ts";

describe("declared parts at synth", () => {
  it("refuses a projection whose module does not exist, naming the file", () => {
    const ghost: AppDefinition = {
      ...app,
      services: app.services.map((s) =>
        s.name === "accounts" ? { ...s, projections: [...s.projections, { ...balances, name: "ghost" }] } : s,
      ),
    };
    expect(() => synthesize(ghost)).toThrow(
      "accounts-ghost: accounts.ghost (projection) is declared in functions/accounts/ghost-projection.ts, which does not exist",
    );
  });
});
