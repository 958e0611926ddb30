/**
 * `canon add service|command|projection|reactor`: scaffolds a part of the app — its files, a test,
 * and its declaration (in its service's `service.ts`, a new service in `functions/app.ts`) — so
 * that what it writes type-checks, plans and runs at once. Bad input is refused, in the user's
 * words, before anything is written. The shapes written are those of shared/parts.ts.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isCanonError } from "../../shared/errors.ts";
import type { AppDefinition, ServiceDefinition } from "../../shared/topology.ts";
import { parseCommandLine, refuse } from "./cli.ts";

export const addUsage = `canon add — scaffold a part of the app

Usage: canon add service <name> [--aggregate <Type>] [--bus <bus>] [--root <dir>]
       canon add command <service>.<Command> [--root <dir>]
       canon add projection <service>.<name> --events <Type,…> [--root <dir>]
       canon add reactor <service>.<name> --events <Type,…> --sends-to <service,…> [--root <dir>]

service     functions/<name>/{contract,decider,service}.ts, its .proto (one command, one event),
            a test of its decider, and the service in functions/app.ts
command     the command's message and rpc in its service's .proto, the event it records, and
            its case in the service's decide
projection  functions/<service>/<name>-projection.ts (one item per aggregate, a typed fold),
            a test of the fold, and the projection in its service's declaration
reactor     functions/<service>/<name>-reactor.ts (the commands that follow from each event),
            a test, and the reactor in its service's declaration

Then \`canon dev\` runs it and \`npx cdk deploy\` deploys it.

Options:
  --aggregate <Type>    A new service's aggregate type (default: its name in PascalCase)
  --bus <bus>           A new service's bus (default: the first of the app)
  --events <Type,…>     The event types it subscribes to, each emitted by a service of the app
  --sends-to <s,…>      The services whose commands a reactor sends
  --root <dir>          The repository to write into (default: this one)
  -h, --help            Show this help`;

/** What `canon add` writes: each file's path (from the root) and its whole content. */
export interface Scaffold {
  readonly files: readonly { readonly path: string; readonly content: string }[];
  /** Regenerate events/gen (the scaffold wrote a .proto). */
  readonly generate?: boolean;
}

/** A refusal in the user's words (exit status 2). */
export class ScaffoldError extends Error {
  override name = "ScaffoldError";
  readonly code = "scaffold";
}

const kebab = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const pascalName = /^[A-Z][A-Za-z0-9]*$/;
const pascal = (kebabName: string) => kebabName.replace(/(?:^|-)([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const camel = (name: string) => name.charAt(0).toLowerCase() + name.slice(1);
const snake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
const read = (root: string, path: string) => readFileSync(join(root, path), "utf8");

/** `<service>.<name>` of an existing service, or a refusal naming what is wrong. */
function target(app: AppDefinition, value: string, example: string): [ServiceDefinition, string] {
  const [serviceName, name, ...extra] = value.split(".");
  if (serviceName === undefined || name === undefined || name === "" || extra.length > 0) {
    throw new ScaffoldError(`expected <service>.<name>, e.g. ${example}, not "${value}"`);
  }
  const service = app.services.find((s) => s.name === serviceName);
  if (service === undefined) {
    throw new ScaffoldError(`no service "${serviceName}" (the app has ${app.services.map((s) => s.name).join(", ")})`);
  }
  return [service, name];
}

/** A part's name: lower-case words joined by "-", not taken by another part of its service. */
function partName(service: ServiceDefinition, name: string, kind: "projection" | "reactor"): void {
  if (!kebab.test(name)) throw new ScaffoldError(`a ${kind}'s name is lower-case words joined by "-", not "${name}"`);
  const taken = [...service.projections, ...service.reactors].some((p) => p.name === name);
  if (taken || ["commands", "state", "outcomes"].includes(name)) {
    throw new ScaffoldError(`${service.name} already has a projection or reactor "${name}"`);
  }
}

/** The event unions the types come from: `<Aggregate>Event` of each emitting service's decider.ts. */
function eventUnions(app: AppDefinition, root: string, service: string, events: readonly string[]) {
  if (events.length === 0) throw new ScaffoldError("--events names at least one event type");
  const owners = new Map<string, { module: string; union: string; types: string[] }>();
  for (const type of new Set(events)) {
    const owner = app.services.find((s) => s.events?.includes(type) && s.aggregateType !== undefined);
    if (owner === undefined) {
      const known = app.services.flatMap((s) => s.events ?? []);
      throw new ScaffoldError(`no service emits "${type}" (the app's event types: ${known.join(", ")})`);
    }
    const union = `${owner.aggregateType}Event`;
    const decider = `functions/${owner.name}/decider.ts`;
    if (!existsSync(join(root, decider)) || !read(root, decider).includes(`export type ${union} `)) {
      throw new ScaffoldError(`${decider} does not export the event union ${union}`);
    }
    const module = owner.name === service ? "./decider.ts" : `../${owner.name}/decider.ts`;
    const entry = owners.get(union) ?? { module, union, types: [] };
    entry.types.push(type);
    owners.set(union, entry);
  }
  const list = [...owners.values()];
  return {
    types: list.flatMap((o) => o.types),
    union: list
      .map((o) => `\n  | Extract<${o.union}, { type: ${o.types.map((t) => JSON.stringify(t)).join(" | ")} }>`)
      .join(""),
    imports: list
      .sort((a, b) => a.module.localeCompare(b.module))
      .map((o) => `import type { ${o.union} } from "${o.module}";`),
  };
}

/**
 * The service's declaration with `value` added to its `projections` or `reactors` list (the
 * list made if missing) and its import; refused if the declaration is not `service({ … })`.
 */
function declare(root: string, service: string, list: "projections" | "reactors", value: string, from: string) {
  const path = `functions/${service}/service.ts`;
  if (!existsSync(join(root, path))) throw new ScaffoldError(`${path} does not exist`);
  let text = read(root, path);
  const call = /service\(\{\n?/.exec(text);
  if (call === null) throw new ScaffoldError(`${path} does not declare the service with service({ … })`);
  const existing = new RegExp(`\\b${list}: \\[`).exec(text);
  if (existing !== null) {
    const at = existing.index + existing[0].length;
    text = `${text.slice(0, at)}${value}, ${text.slice(at)}`.replace(`${value}, ]`, `${value}]`);
  } else {
    const close = text.lastIndexOf("})");
    const before = text.slice(0, close).trimEnd();
    text = `${before}${before.endsWith(",") || before.endsWith("{") ? "" : ","} ${list}: [${value}] ${text.slice(close)}`;
  }
  const lastImport = text.lastIndexOf("\nimport ");
  const lineEnd = text.indexOf("\n", lastImport + 1);
  text = `${text.slice(0, lineEnd + 1)}import { ${value} } from "${from}";\n${text.slice(lineEnd + 1)}`;
  return { path, content: text };
}

function refuseExisting(root: string, paths: readonly string[]): void {
  for (const path of paths) if (existsSync(join(root, path))) throw new ScaffoldError(`${path} exists already`);
}

/** The files of a new aggregate projection of a service, checked against the app; throws ScaffoldError. */
export function scaffoldProjection(
  app: AppDefinition,
  root: string,
  value: string,
  events: readonly string[],
): Scaffold {
  const [service, name] = target(app, value, "accounts.largest-deposits");
  partName(service, name, "projection");
  const { types, union, imports } = eventUnions(app, root, service.name, events);
  const Name = pascal(name);
  const id = camel(Name);
  const modulePath = `functions/${service.name}/${name}-projection.ts`;
  const testPath = `test/unit/${service.name}-${name}-projection.test.ts`;
  refuseExisting(root, [modulePath, testPath]);
  const projection = `/**
 * The \`${service.name}/${name}\` view, one item per aggregate: how many of its
 * ${types.join(", ")} events it has seen, and when the last one happened.
 * Scaffolded by \`canon add projection\`: make \`${Name}Item\` and \`evolve${Name}\` what the view should hold.
 */
import { upcasters } from "../../events/upcasters.ts";
import { eventTypes } from "../../shared/domain/decider.ts";
import { type ProjectedEvent, projection } from "../../shared/parts.ts";
${imports.join("\n")}

/** The events the view folds. */
export type ${Name}Event = ${union};
export const ${id}EventTypes = eventTypes<${Name}Event>({ ${types.map((t) => `${t}: true`).join(", ")} });

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

export const ${id} = projection<${Name}Item, ${Name}Event>({
  name: "${name}",
  events: ${id}EventTypes,
  key: "aggregateId",
  upcasters,
  evolve: evolve${Name},
});
`;
  const [first] = types as [string];
  const test = `/** The \`${service.name}/${name}\` view's fold (scaffolded by \`canon add projection\`). */
import { describe, expect, it } from "vitest";
import { evolve${Name}, type ${Name}Event } from "../../${modulePath}";
import type { ProjectedEvent } from "../../shared/parts.ts";

/** An event as the runtime hands it to the fold (only the fields the fold reads). */
const event = (type: ${Name}Event["type"], version: number, time: string) =>
  ({ type, subject: "agg-1", aggregateversion: version, time }) as ProjectedEvent<${Name}Event>;

describe("the ${service.name}/${name} view", () => {
  it("counts an aggregate's events and keeps the time of the last", () => {
    const once = evolve${Name}(undefined, event(${JSON.stringify(first)}, 1, "2026-01-01T00:00:00.000Z"));
    const twice = evolve${Name}(once, event(${JSON.stringify(first)}, 2, "2026-01-02T00:00:00.000Z"));
    expect(twice).toEqual({ id: "agg-1", aggregateId: "agg-1", events: 2, lastAt: "2026-01-02T00:00:00.000Z", version: 2 });
  });
});
`;
  const declaration = declare(root, service.name, "projections", id, `./${name}-projection.ts`);
  return {
    files: [{ path: modulePath, content: projection }, { path: testPath, content: test }, declaration],
  };
}

/** The files of a new reactor of a service: what it listens to and whom it may send to. */
export function scaffoldReactor(
  app: AppDefinition,
  root: string,
  value: string,
  events: readonly string[],
  sendsTo: readonly string[],
): Scaffold {
  const [service, name] = target(app, value, "transfers.notify");
  partName(service, name, "reactor");
  if (sendsTo.length === 0) throw new ScaffoldError("--sends-to names at least one service whose commands it sends");
  for (const to of sendsTo) {
    const found = app.services.find((s) => s.name === to);
    if (found === undefined) throw new ScaffoldError(`--sends-to: no service "${to}"`);
    if (found.aggregate === undefined) {
      throw new ScaffoldError(`--sends-to: "${to}" takes no commands (it declares no contract and decider)`);
    }
  }
  const { types, union, imports } = eventUnions(app, root, service.name, events);
  const Name = pascal(name);
  const id = camel(Name);
  const modulePath = `functions/${service.name}/${name}-reactor.ts`;
  const testPath = `test/unit/${service.name}-${name}-reactor.test.ts`;
  refuseExisting(root, [modulePath, testPath]);
  const reactor = `/**
 * The \`${service.name}.${name}\` reactor (law E): the commands that follow from each of its
 * ${types.join(", ")} events, sent to ${sendsTo.join(", ")}. Pure; the runtime derives each
 * command's id from the event that caused it, so a redelivered event sends nothing twice.
 * Scaffolded by \`canon add reactor\`: make \`react${Name}\` ask for the commands that should follow.
 */
import { upcasters } from "../../events/upcasters.ts";
import { eventTypes } from "../../shared/domain/decider.ts";
import { type CommandRequest, type ProjectedEvent, reactor } from "../../shared/parts.ts";
${imports.join("\n")}

/** The events it listens to. */
export type ${Name}Event = ${union};

/** The commands that follow from one event: none yet. */
export function react${Name}(event: ProjectedEvent<${Name}Event>): CommandRequest[] {
  switch (event.type) {
    default:
      return [];
  }
}

export const ${id} = reactor<${Name}Event>({
  name: "${name}",
  events: eventTypes<${Name}Event>({ ${types.map((t) => `${t}: true`).join(", ")} }),
  sendsTo: [${sendsTo.map((s) => JSON.stringify(s)).join(", ")}],
  upcasters,
  react: react${Name},
});
`;
  const [first] = types as [string];
  const test = `/** The \`${service.name}.${name}\` reactor (scaffolded by \`canon add reactor\`). */
import { describe, expect, it } from "vitest";
import { react${Name}, type ${Name}Event } from "../../${modulePath}";
import type { ProjectedEvent } from "../../shared/parts.ts";

describe("the ${service.name}.${name} reactor", () => {
  it("asks for no command yet", () => {
    const event = { type: ${JSON.stringify(first)}, subject: "agg-1", data: {} } as unknown as ProjectedEvent<${Name}Event>;
    expect(react${Name}(event)).toEqual([]);
  });
});
`;
  const declaration = declare(root, service.name, "reactors", id, `./${name}-reactor.ts`);
  return {
    files: [{ path: modulePath, content: reactor }, { path: testPath, content: test }, declaration],
  };
}

/** The proto file of a scaffolded service (the one place its commands and events are written). */
const protoPath = (service: string) => `events/proto/canon/${service.replaceAll("-", "_")}/v1/${service}.proto`;

/** The files of a new service: its .proto, contract, decider, declaration and a test; and its line in the app. */
export function scaffoldService(
  app: AppDefinition,
  root: string,
  name: string,
  options: { readonly aggregate?: string; readonly bus?: string },
): Scaffold {
  if (!kebab.test(name)) throw new ScaffoldError(`a service's name is lower-case words joined by "-", not "${name}"`);
  if (name.length > 31) throw new ScaffoldError(`a service's name has at most 31 characters, not ${name.length}`);
  if (app.services.some((s) => s.name === name)) throw new ScaffoldError(`the app already has a service "${name}"`);
  const Type = options.aggregate ?? pascal(name);
  if (!pascalName.test(Type))
    throw new ScaffoldError(`--aggregate is a PascalCase type name, e.g. Ledger, not "${Type}"`);
  if (app.services.some((s) => s.aggregateType === Type)) {
    throw new ScaffoldError(`the aggregate type "${Type}" is taken by another service`);
  }
  const bus = options.bus ?? app.buses[0]?.name;
  if (bus === undefined || !app.buses.some((b) => b.name === bus)) {
    throw new ScaffoldError(`no bus "${bus}" (the app has ${app.buses.map((b) => b.name).join(", ")})`);
  }
  const appPath = "functions/app.ts";
  const appText = read(root, appPath);
  const services = /\bservices: \[/.exec(appText);
  if (services === null) throw new ScaffoldError(`${appPath} has no "services: [" to add the service to`);

  const Service = pascal(name);
  const id = camel(Service);
  const pkg = `canon.${name.replaceAll("-", "_")}.v1`;
  const idField = `${snake(Type)}_id`;
  const idJson = `${camel(Type)}Id`;
  const create = `Open${Type}`;
  const opened = `${Type}Opened`;
  const files = {
    proto: protoPath(name),
    contract: `functions/${name}/contract.ts`,
    decider: `functions/${name}/decider.ts`,
    service: `functions/${name}/service.ts`,
    test: `test/unit/${name}-decider.test.ts`,
  };
  refuseExisting(root, Object.values(files));
  const proto = `syntax = "proto3";

package ${pkg};

import "buf/validate/validate.proto";
import "canon/envelope/v1/envelope.proto";

// The API of the ${name} service: one rpc per command, routed as POST /commands/${name}/{rpc}.
service ${Service}Service {
  rpc ${create}(${pkg}.${create}) returns (canon.envelope.v1.CommandAccepted);
}

// --- commands ---

message ${create} {
  string ${idField} = 1 [(buf.validate.field).string = {
    min_len: 1
    max_len: 64
    pattern: "^[A-Za-z0-9._-]+$"
  }];
}

// --- events ---

message ${opened} {
  string ${idField} = 1;
}
`;
  const genPath = `../../events/gen/canon/${name.replaceAll("-", "_")}/v1/${name}_pb.ts`;
  const contract = `/** The ${name} service's commands and events: the messages of ${files.proto}. */
import * as proto from "${genPath}";
import { contract } from "../../shared/domain/proto-contract.ts";

export const ${id}Contract = contract(proto, { type: "${Type}", id: "${idJson}", api: proto.${Service}Service });
`;
  const decider = `/**
 * The ${Type} aggregate. Scaffolded by \`canon add service\`: add a command with
 * \`canon add command ${name}.<Command>\`, then decide it here. Pure functions only.
 */
import { upcasters } from "../../events/upcasters.ts";
import { type Decision, reject } from "../../shared/domain/decider.ts";
import type { CommandsOf, EventsOf } from "../../shared/domain/proto-contract.ts";
import type { DeciderPart } from "../../shared/parts.ts";
import type { ${id}Contract } from "./contract.ts";

export type ${Type}Command = CommandsOf<typeof ${id}Contract>;
export type ${Type}Event = EventsOf<typeof ${id}Contract>;

export type ${Type}State = { readonly status: "none" } | { readonly status: "open" };

function decide(command: ${Type}Command, state: ${Type}State): Decision<${Type}Event> {
  switch (command.type) {
    case "${create}":
      if (state.status !== "none") return reject(\`${camel(Type)} \${command.${idJson}} is already open\`);
      return [{ type: "${opened}", data: { ${idJson}: command.${idJson} } }];
    default: {
      const unknown: never = command;
      throw new Error(\`unhandled command \${JSON.stringify(unknown)}\`);
    }
  }
}

function evolve(state: ${Type}State, event: ${Type}Event): ${Type}State {
  switch (event.type) {
    case "${opened}":
      return { status: "open" };
    default:
      return state;
  }
}

export const ${id}Decider: DeciderPart<${Type}Command, ${Type}Event, ${Type}State> = {
  initialState: { status: "none" },
  decide,
  evolve,
  upcasters,
};
`;
  const service = `import { service } from "../../shared/service.ts";
import { ${id}Contract } from "./contract.ts";
import { ${id}Decider } from "./decider.ts";

/** The ${name} service (scaffolded by \`canon add service\`). */
export const ${id}Service = service({
  name: "${name}",
  bus: "${bus}",
  contract: ${id}Contract,
  decider: ${id}Decider,
  projections: [],
});
`;
  const test = `/** The ${Type} aggregate's decider (scaffolded by \`canon add service\`). */
import { describe, expect, it } from "vitest";
import { ${id}Decider } from "../../${files.decider}";

const context = { commandId: "c-1", receivedAt: new Date(0) };

describe("the ${Type} decider", () => {
  it("opens a ${camel(Type)} once", () => {
    const { decide, evolve, initialState } = ${id}Decider;
    const events = decide({ type: "${create}", ${idJson}: "x-1" }, initialState, context);
    expect(events).toEqual([{ type: "${opened}", data: { ${idJson}: "x-1" } }]);
    const open = Array.isArray(events) ? events.reduce(evolve, initialState) : initialState;
    expect(decide({ type: "${create}", ${idJson}: "x-1" }, open, context)).toMatchObject({ rejected: true });
  });
});
`;
  const at = services.index + services[0].length;
  let updatedApp = `${appText.slice(0, at)}${appText.slice(at).replace(/\]/, `, ${id}Service]`)}`;
  const lastImport = updatedApp.lastIndexOf("\nimport ");
  const lineEnd = updatedApp.indexOf("\n", lastImport + 1);
  updatedApp = `${updatedApp.slice(0, lineEnd + 1)}import { ${id}Service } from "./${name}/service.ts";\n${updatedApp.slice(lineEnd + 1)}`;
  return {
    generate: true,
    files: [
      { path: files.proto, content: proto },
      { path: files.contract, content: contract },
      { path: files.decider, content: decider },
      { path: files.service, content: service },
      { path: files.test, content: test },
      { path: appPath, content: updatedApp },
    ],
  };
}

/**
 * A new command of a service: its message and rpc in the service's .proto (beside its first
 * command, in the service the API routes), the event it records, and its case in the decider's
 * `decide` (which records that event). Its fields: the aggregate id; add the rest to the message.
 */
export function scaffoldCommand(app: AppDefinition, root: string, value: string): Scaffold {
  const [service, name] = target(app, value, "ledger.CloseLedger");
  if (!pascalName.test(name))
    throw new ScaffoldError(`a command's name is PascalCase, e.g. CloseLedger, not "${name}"`);
  if (service.aggregate === undefined) {
    throw new ScaffoldError(`${service.name} takes no commands (it declares no contract and decider)`);
  }
  const { contract } = service.aggregate;
  if (Object.hasOwn(contract.commands, name)) throw new ScaffoldError(`${service.name} already has a command ${name}`);
  const event = `${name}Recorded`;
  if (Object.hasOwn(contract.events, event)) throw new ScaffoldError(`${service.name} already has an event ${event}`);
  const first = Object.values(contract.commands)[0];
  const file = first?.schema.file;
  const path = file === undefined ? undefined : `events/proto/${file.name}.proto`;
  if (first === undefined || path === undefined || !existsSync(join(root, path))) {
    throw new ScaffoldError(`${service.name}: no .proto file found for its commands`);
  }
  const idField = first.schema.fields.find((f) => f.jsonName === contract.id);
  if (idField === undefined) throw new ScaffoldError(`${first.schema.typeName} has no field ${contract.id}`);
  const apiService = file?.services.find((s) => s.methods.some((m) => contract.apiCommands.includes(m.name)));
  const rpcService = apiService ?? file?.services[0];
  if (rpcService === undefined) throw new ScaffoldError(`${path} declares no service to add the rpc to`);
  let proto = read(root, path);
  const opening = new RegExp(`service ${rpcService.name} \\{\\n`).exec(proto);
  if (opening === null) throw new ScaffoldError(`${path}: "service ${rpcService.name} {" not found`);
  const pkg = file?.proto.package ?? "";
  const rpc = `  rpc ${name}(${pkg}.${name}) returns (canon.envelope.v1.CommandAccepted);\n`;
  // After the service's last rpc: the routes keep the order they were added in.
  const at = proto.indexOf("\n}", opening.index) + 1;
  proto = `${proto.slice(0, at)}${rpc}${proto.slice(at)}`;
  const idName = idField.name;
  proto += `
// ${name}: scaffolded by \`canon add command\`; add its fields (and their rules) here.
message ${name} {
  string ${idName} = 1 [(buf.validate.field).string = {
    min_len: 1
    max_len: 64
    pattern: "^[A-Za-z0-9._-]+$"
  }];
}

message ${event} {
  string ${idName} = 1;
}
`;
  const deciderPath = `functions/${service.name}/decider.ts`;
  const decider = read(root, deciderPath);
  const sw = /switch \(command\.type\) \{\n(\s*)/.exec(decider);
  if (sw === null) throw new ScaffoldError(`${deciderPath}: no "switch (command.type) {" in decide to add the case to`);
  const indent = sw[1] ?? "    ";
  const id = contract.id;
  const kase = `case "${name}":\n${indent}  return [{ type: "${event}", data: { ${id}: command.${id} } }];\n${indent}`;
  const caseAt = sw.index + sw[0].length;
  return {
    generate: true,
    files: [
      { path, content: proto },
      { path: deciderPath, content: `${decider.slice(0, caseAt)}${kase}${decider.slice(caseAt)}` },
    ],
  };
}

/** `canon add`'s command line (bin/commands/cli.ts reads it). */
const addLine = {
  name: "canon add",
  usage: addUsage,
  options: {
    events: { type: "string" },
    "sends-to": { type: "string" },
    aggregate: { type: "string" },
    bus: { type: "string" },
    root: { type: "string" },
  },
  actions: { service: ["<name>"], command: ["<name>"], projection: ["<name>"], reactor: ["<name>"] },
} as const;

/** `canon add …`: exit status 0 when written, 2 for bad input (with the reason and the usage). */
export async function addCommand(argv: string[], repoRoot: string): Promise<number> {
  const line = parseCommandLine(addLine, argv);
  if (typeof line === "number") return line;
  const { values, action: kind } = line;
  const name = line.operands[0] as string;
  const root = values.root ?? repoRoot;
  const { app } = (await import(join(root, "functions/app.ts"))) as { app: AppDefinition };
  const list = (value: string | undefined) =>
    (value ?? "")
      .split(",")
      .map((t) => t.trim())
      .filter((t) => t !== "");
  let scaffold: Scaffold;
  try {
    if (kind === "service") scaffold = scaffoldService(app, root, name, values);
    else if (kind === "command") scaffold = scaffoldCommand(app, root, name);
    else if (kind === "reactor") {
      scaffold = scaffoldReactor(app, root, name, list(values.events), list(values["sends-to"]));
    } else scaffold = scaffoldProjection(app, root, name, list(values.events));
  } catch (error) {
    if (!isCanonError(error, "scaffold")) throw error;
    return refuse(addLine, error.message);
  }
  for (const file of scaffold.files) {
    mkdirSync(dirname(join(root, file.path)), { recursive: true });
    writeFileSync(join(root, file.path), file.content);
    console.log(`canon add: wrote ${file.path}`);
  }
  if (scaffold.generate === true) {
    // events/gen from the .proto just written (what `npm run generate` does).
    const buf = join(root, "node_modules/@bufbuild/buf/bin/buf");
    const path = `${join(root, "node_modules/.bin")}:${process.env.PATH ?? ""}`; // its protoc-gen-es
    execFileSync(process.execPath, [buf, "generate", "--clean"], {
      cwd: join(root, "events"),
      env: { ...process.env, PATH: path },
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
  // In the repository's style (its formatter and import order), as if written by hand.
  const biome = join(root, "node_modules/@biomejs/biome/bin/biome");
  const formatted = scaffold.files.map((f) => f.path).filter((p) => p.endsWith(".ts"));
  if (existsSync(biome)) {
    execFileSync(process.execPath, [biome, "check", "--write", ...formatted], { cwd: root, stdio: "ignore" });
  }
  return 0;
}
