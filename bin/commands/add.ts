/**
 * `canon add projection <service>.<name> --events <Type,…>`: scaffolds an aggregate projection —
 * its module (a typed fold the framework applies, reads and writes), a test of the fold, and its
 * declaration in the service — so that it type-checks, plans and runs at once. Bad input is
 * refused before anything is written.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import type { AppDefinition } from "../../shared/topology.ts";

export const addUsage = `canon add — scaffold a part of the app

Usage: canon add projection <service>.<name> --events <Type,…> [--root <dir>]

Writes functions/<service>/<name>-projection.ts (one item per aggregate: a typed, pure fold the
framework applies), test/unit/<service>-<name>-projection.test.ts, and the projection's
declaration in functions/<service>/service.ts. Edit the item and the fold; \`canon dev\` runs it,
\`npx cdk deploy\` deploys it, \`/views/<service>/<name>/<aggregate id>\` reads it.

Options:
  --events <Type,…>  The event types it folds (comma-separated), each emitted by a service of the app
  --root <dir>       The repository to write into (default: this one)
  -h, --help         Show this help`;

/** What `canon add projection` writes: each file's path (from the root) and its whole content. */
export interface Scaffold {
  readonly files: readonly { readonly path: string; readonly content: string }[];
}

/** A refusal in the user's words (exit status 2). */
export class ScaffoldError extends Error {
  override name = "ScaffoldError";
}

const kebab = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const pascal = (kebabName: string) => kebabName.replace(/(?:^|-)([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The files of a new aggregate projection of `service`, checked against the app; throws ScaffoldError. */
export function scaffoldProjection(
  app: AppDefinition,
  root: string,
  target: string,
  events: readonly string[],
): Scaffold {
  const [serviceName, name, ...extra] = target.split(".");
  if (serviceName === undefined || name === undefined || extra.length > 0) {
    throw new ScaffoldError(`expected <service>.<name>, e.g. accounts.largest-deposits, not "${target}"`);
  }
  const service = app.services.find((s) => s.name === serviceName);
  if (service === undefined) {
    throw new ScaffoldError(`no service "${serviceName}" (the app has ${app.services.map((s) => s.name).join(", ")})`);
  }
  if (!kebab.test(name))
    throw new ScaffoldError(`a projection's name is lower-case words joined by "-", not "${name}"`);
  if (service.projections.some((p) => p.name === name)) {
    throw new ScaffoldError(`${serviceName} already has a projection "${name}"`);
  }
  if (events.length === 0) throw new ScaffoldError("--events names at least one event type");
  // Each event type from the service that emits it: its union is `<Aggregate>Event` in its events.ts.
  const owners = new Map<string, { module: string; union: string; types: string[] }>();
  for (const type of new Set(events)) {
    const owner = app.services.find((s) => s.events?.includes(type) && s.aggregateType !== undefined);
    if (owner === undefined) {
      const known = app.services.flatMap((s) => s.events ?? []);
      throw new ScaffoldError(`no service emits "${type}" (the app's event types: ${known.join(", ")})`);
    }
    const union = `${owner.aggregateType}Event`;
    const module = owner.name === serviceName ? "./events.ts" : `../${owner.name}/events.ts`;
    const eventsFile = join(root, "functions", owner.name, "events.ts");
    if (!existsSync(eventsFile) || !readFileSync(eventsFile, "utf8").includes(`export type ${union} `)) {
      throw new ScaffoldError(`functions/${owner.name}/events.ts does not export the event union ${union}`);
    }
    const entry = owners.get(union) ?? { module, union, types: [] };
    entry.types.push(type);
    owners.set(union, entry);
  }
  const servicePath = `functions/${serviceName}/service.ts`;
  const declaration = readFileSync(join(root, servicePath), "utf8");
  const opening = /\n(\s*)projections: \[\n?/.exec(declaration);
  if (opening === null) throw new ScaffoldError(`${servicePath} has no "projections: [" to declare it in`);

  const Name = pascal(name);
  const camel = Name.charAt(0).toLowerCase() + Name.slice(1);
  const types = [...owners.values()].flatMap((o) => o.types);
  const modulePath = `functions/${serviceName}/${name}-projection.ts`;
  const testPath = `test/unit/${serviceName}-${name}-projection.test.ts`;
  const unionOf = [...owners.values()]
    .map((o) => `\n  | Extract<${o.union}, { type: ${o.types.map((t) => JSON.stringify(t)).join(" | ")} }>`)
    .join("");
  const imports = [...owners.values()]
    .sort((a, b) => a.module.localeCompare(b.module))
    .map((o) => `import type { ${o.union} } from "${o.module}";`);

  const projection = `/**
 * Lambda entry: the \`${serviceName}/${name}\` view, one item per aggregate: how many of its
 * ${types.join(", ")} events it has seen, and when the last one happened.
 * Scaffolded by \`canon add projection\`: make \`${Name}Item\` and \`evolve${Name}\` what the view should hold.
 */
import { upcasters } from "../../events/upcasters.ts";
import { eventTypes } from "../../shared/domain/decider.ts";
import { aggregateProjection, type ProjectedEvent, projectionHandler } from "../../shared/handlers/projection.ts";
${imports.join("\n")}

/** The events the view folds. */
export type ${Name}Event = ${unionOf};
export const ${camel}EventTypes = eventTypes<${Name}Event>({ ${types.map((t) => `${t}: true`).join(", ")} });

export interface ${Name}Item {
  readonly id: string;
  readonly aggregateId: string;
  readonly events: number;
  readonly lastAt: string;
  readonly version: number;
}

/** Folds one event into its aggregate's item (pure; \`undefined\`: the aggregate's first event). */
export function evolve${Name}(item: ${Name}Item | undefined, event: ProjectedEvent<${Name}Event>): ${Name}Item {
  const { subject, time, aggregateversion } = event;
  return { id: subject, aggregateId: subject, events: (item?.events ?? 0) + 1, lastAt: time, version: aggregateversion };
}

export const handler = projectionHandler(
  aggregateProjection<${Name}Item, ${Name}Event>({
    name: "${serviceName}.${name}",
    events: ${camel}EventTypes,
    upcasters,
    evolve: evolve${Name},
  }),
);
`;

  const [first] = types as [string];
  const test = `/** The \`${serviceName}/${name}\` view's fold (scaffolded by \`canon add projection\`). */
import { describe, expect, it } from "vitest";
import { evolve${Name}, type ${Name}Event } from "../../${modulePath}";
import type { ProjectedEvent } from "../../shared/handlers/projection.ts";

/** An event as the runtime hands it to the fold (only the fields the fold reads). */
const event = (type: ${Name}Event["type"], version: number, time: string) =>
  ({ type, subject: "agg-1", aggregateversion: version, time }) as ProjectedEvent<${Name}Event>;

describe("the ${serviceName}/${name} view", () => {
  it("counts an aggregate's events and keeps the time of the last", () => {
    const once = evolve${Name}(undefined, event(${JSON.stringify(first)}, 1, "2026-01-01T00:00:00.000Z"));
    const twice = evolve${Name}(once, event(${JSON.stringify(first)}, 2, "2026-01-02T00:00:00.000Z"));
    expect(twice).toEqual({ id: "agg-1", aggregateId: "agg-1", events: 2, lastAt: "2026-01-02T00:00:00.000Z", version: 2 });
  });
});
`;

  const indent = `${opening[1]}  `;
  const entry = [
    `${indent}{`,
    `${indent}  name: "${name}",`,
    `${indent}  handler: "${modulePath}",`,
    `${indent}  events: [${types.map((t) => JSON.stringify(t)).join(", ")}],`,
    `${indent}  key: "aggregateId",`,
    `${indent}},`,
  ].join("\n");
  const at = opening.index + opening[0].length;
  const updated = `${declaration.slice(0, at)}${opening[0].endsWith("\n") ? "" : "\n"}${entry}\n${declaration.slice(at)}`;

  for (const path of [modulePath, testPath]) {
    if (existsSync(join(root, path))) throw new ScaffoldError(`${path} exists already`);
  }
  return {
    files: [
      { path: modulePath, content: projection },
      { path: testPath, content: test },
      { path: servicePath, content: updated },
    ],
  };
}

/** `canon add …`: exit status 0 when written, 2 for bad input (with the reason and the usage). */
export async function addCommand(argv: string[], repoRoot: string): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  const parse = (args: string[]) =>
    parseArgs({
      args,
      allowPositionals: true,
      options: { events: { type: "string" }, root: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  try {
    parsed = parse(argv);
  } catch (error) {
    console.error(`canon add: ${(error as Error).message}\n\n${addUsage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(addUsage);
    return 0;
  }
  const [kind, target, ...more] = positionals;
  if (kind !== "projection" || target === undefined || more.length > 0) {
    console.error(`canon add: expected "projection <service>.<name>"\n\n${addUsage}`);
    return 2;
  }
  const root = values.root ?? repoRoot;
  const { app } = (await import(join(root, "functions/app.ts"))) as { app: AppDefinition };
  const events = (values.events ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  let scaffold: Scaffold;
  try {
    scaffold = scaffoldProjection(app, root, target, events);
  } catch (error) {
    if (!(error instanceof ScaffoldError)) throw error;
    console.error(`canon add: ${error.message}\n\n${addUsage}`);
    return 2;
  }
  for (const file of scaffold.files) {
    mkdirSync(dirname(join(root, file.path)), { recursive: true });
    writeFileSync(join(root, file.path), file.content);
    console.log(`canon add: wrote ${file.path}`);
  }
  // In the repository's style (its formatter and import order), as if written by hand.
  const biome = join(root, "node_modules/@biomejs/biome/bin/biome");
  if (existsSync(biome)) {
    const paths = scaffold.files.map((f) => f.path);
    execFileSync(process.execPath, [biome, "check", "--write", ...paths], { cwd: root, stdio: "ignore" });
  }
  return 0;
}
