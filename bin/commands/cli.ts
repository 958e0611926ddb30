/**
 * How every `canon` command reads its command line: node:util's parseArgs, strict, with
 * `-h, --help` added to its options. `--help` prints its usage (exit 0); an unknown option, an
 * option without its value, an argument it does not take, or an action it does not have is
 * refused in the user's words, followed by the usage, on stderr (exit 2, a usage error).
 */
import { type ParseArgsConfig, parseArgs } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

const helpOption = { help: { type: "boolean", short: "h", default: false } } as const;

/** A command as its user types and reads it. */
export interface CommandLine<O extends Options> {
  /** As typed: `canon archive`. */
  readonly name: string;
  /** What `--help` prints, and what follows a usage error. */
  readonly usage: string;
  /** Its options (without `--help`, which every command has). */
  readonly options: O;
  /**
   * Its actions, each with the operands it takes: `{ verify: [], sql: ["<query>"] }` for
   * `canon archive verify` and `canon archive sql <query>`. Without actions, it takes no
   * arguments but its options.
   */
  readonly actions?: Readonly<Record<string, readonly string[]>>;
}

type Values<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O & typeof helpOption; strict: true; allowPositionals: true }>
>["values"];

/** A command line read: its options' values, and its action and operands (when it has actions). */
export interface ParsedLine<O extends Options> {
  readonly values: Values<O>;
  /** The action named (one of `actions`), or "" for a command without actions. */
  readonly action: string;
  /** The action's operands, as many as it takes. */
  readonly operands: readonly string[];
}

/**
 * Reads `args` as `command` takes them. Returns what was given, or the exit status once it has
 * printed the help (0) or refused the command line (2).
 */
export function parseCommandLine<O extends Options>(
  command: CommandLine<O>,
  args: readonly string[],
): ParsedLine<O> | 0 | 2 {
  let parsed: { values: Values<O>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...command.options, ...helpOption },
      strict: true,
      allowPositionals: command.actions !== undefined,
    }) as typeof parsed;
  } catch (error) {
    return refuse(command, inUserWords(error));
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(command.usage);
    return 0;
  }
  if (command.actions === undefined) return { values: parsed.values, action: "", operands: [] };
  const [action = "", ...operands] = parsed.positionals;
  if (!Object.hasOwn(command.actions, action) || command.actions[action]?.length !== operands.length) {
    return refuse(command, `expected ${alternatives(command.actions)}`);
  }
  return { values: parsed.values, action, operands };
}

/**
 * Refuses a command line: prints `<name>: <reason>` on stderr, then the usage unless told not
 * to (a reason that says all there is to say), and returns the exit status of a usage error.
 */
export function refuse(
  command: Pick<CommandLine<Options>, "name" | "usage">,
  reason: string,
  options: { readonly usage?: boolean } = {},
): 2 {
  console.error(
    options.usage === false ? `${command.name}: ${reason}` : `${command.name}: ${reason}\n\n${command.usage}`,
  );
  return 2;
}

/** `"verify" or "sql <query>"`; `"list", "redrive <a> <b>" or "move <queue>"`. */
function alternatives(actions: Readonly<Record<string, readonly string[]>>): string {
  const each = Object.entries(actions).map(([action, operands]) => `"${[action, ...operands].join(" ")}"`);
  return each.length < 2 ? (each[0] ?? "nothing") : `${each.slice(0, -1).join(", ")} or ${each.at(-1)}`;
}

/** parseArgs's error, as its user would say it. */
export function inUserWords(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  const text = message ?? "";
  // Node names the option as typed, its long name after its short one: '-p, --port <value>'.
  const option = /'[^']*?(--[^' ,]+)/.exec(text)?.[1] ?? /'(-[^' ,]+)/.exec(text)?.[1];
  const argument = /^Unexpected argument '(.*)'\./.exec(text)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${option}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (text.includes("does not take an argument")) return `${option} takes no value`;
      if (text.includes("ambiguous"))
        return `${option} needs a value (write ${option}=<value> for one that starts with "-")`;
      return `${option} needs a value`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument "${argument}"`;
    default:
      return message ?? String(error);
  }
}
