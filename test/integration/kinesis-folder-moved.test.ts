/**
 * The way out that the Kinesis emulator's refusal of a damaged folder names (docs/local-cloud.md):
 * move only `.canon/data/kinesis` aside and start again. The stream starts empty, every other
 * emulator keeps its data, and the system goes on where it was: consumers whose checkpoints name
 * records of the old stream read the new one from its first record (they say so once), an
 * aggregate's history continues at its next version, and the projections follow.
 */
import { renameSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeDataDir, startSystem, type TestSystem, tempDataDir, view, waitFor } from "../support/system.ts";

const dataDir = tempDataDir("kinesis-moved");
let system: TestSystem | undefined;

afterAll(async () => {
  await system?.stop();
  removeDataDir(dataDir);
});

const balance = (s: TestSystem, version: number) =>
  waitFor(async () => {
    const item = await view<{ version: number; balanceCents: number }>(s, "accounts/balances/moved-1");
    return item?.version === version ? item.balanceCents : undefined;
  }, `balance at version ${version}`);

describe("the Kinesis data folder moved aside", () => {
  it("starts an empty stream and the system goes on: versions continue, projections follow", async () => {
    system = await startSystem({ dataDir });
    expect((await system.command("accounts", "OpenAccount", { accountId: "moved-1", owner: "Ada" })).status).toBe(
      "accepted",
    );
    expect((await system.command("accounts", "Deposit", { accountId: "moved-1", amountCents: 700 })).status).toBe(
      "accepted",
    );
    expect(await balance(system, 2)).toBe(700);
    await system.stop();
    system = undefined;

    renameSync(join(dataDir, "kinesis"), join(dataDir, "kinesis.damaged"));
    system = await startSystem({ dataDir });
    expect(await balance(system, 2)).toBe(700);
    const deposit = await system.command("accounts", "Deposit", { accountId: "moved-1", amountCents: 50 });
    expect(deposit.status).toBe("accepted");
    expect(deposit.events?.[0]?.version).toBe(3);
    expect(await balance(system, 3)).toBe(750);
    const history = await waitFor(async () => {
      const item = await view<{ version: number; entries: { balanceAfterCents: number }[] }>(
        system as TestSystem,
        "statements/history/moved-1",
      );
      return item?.version === 3 ? item : undefined;
    }, "the statement at version 3");
    expect(history.entries.at(-1)?.balanceAfterCents).toBe(750);
  });
});
