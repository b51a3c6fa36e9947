/**
 * The command line of `weft config …`: each command's arguments and options as data, checked by
 * `node:util`'s `parseArgs` (strict: an unknown option or a missing value is a usage error), and
 * the usage text made from the same data, so the two cannot disagree.
 */
import { parseArgs } from "node:util";
import { checkServiceName } from "../config/service.js";
import { InvalidOptionsError } from "../core/errors.js";
import { checkHosts, checkPrefix } from "../etcd/options.js";

/** Bad input: a usage error, an invalid file, a service with no config. Exit code 1. */
export class UsageError extends Error {
  /** The usage text to print after the message, for a mistake on the command line. */
  readonly usage: string | undefined;
  constructor(message: string, usage?: string) {
    super(message);
    this.usage = usage;
  }
}

type OptionName = "etcd" | "prefix" | "message" | "by" | "expect-revision" | "to" | "json" | "help";

interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** The value's placeholder in the usage text. */
  readonly value?: string;
  readonly help: string;
}

const OPTIONS: Readonly<Record<OptionName, OptionSpec>> = {
  etcd: {
    type: "string",
    value: "URL[,URL…]",
    help: "etcd client URLs (the v3 JSON gateway); default $WEFT_ETCD",
  },
  prefix: { type: "string", value: "PREFIX", help: "key prefix of the config documents; default /weft/config/" },
  message: { type: "string", short: "m", value: "TEXT", help: "why: kept in the meta and the history" },
  by: { type: "string", value: "NAME", help: "who: kept in the meta; default $USER@hostname" },
  "expect-revision": {
    type: "string",
    value: "N",
    help: "write only if the config is still at revision N (the one `get` showed; 0: none yet)",
  },
  to: { type: "string", value: "REVISION", help: "the revision to restore; default: the one before the current" },
  json: { type: "boolean", help: "print JSON instead of YAML" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

const ETCD: readonly OptionName[] = ["etcd", "prefix"];
const WRITE: readonly OptionName[] = ["message", "by"];

export const COMMANDS = {
  put: {
    args: ["SERVICE", "FILE"],
    options: [...ETCD, "expect-revision", ...WRITE],
    summary: "validate FILE (JSON or YAML) and write it as SERVICE's config, if nobody wrote since",
  },
  get: {
    args: ["SERVICE"],
    options: [...ETCD, "json"],
    summary: "print SERVICE's config, its revision and who wrote it",
  },
  diff: {
    args: ["SERVICE", "FILE"],
    options: ETCD,
    summary: "show what putting FILE would change (a line diff of the canonical JSON)",
  },
  history: { args: ["SERVICE"], options: ETCD, summary: "list SERVICE's versions, newest first" },
  rollback: {
    args: ["SERVICE"],
    options: [...ETCD, "to", ...WRITE],
    summary: "write a previous version again, as a new revision",
  },
  validate: { args: ["SERVICE", "FILE"], options: [], summary: "check FILE as a client would (no etcd)" },
} as const satisfies Record<string, { args: readonly string[]; options: readonly OptionName[]; summary: string }>;

export type CommandName = keyof typeof COMMANDS;

export interface Invocation {
  readonly command: CommandName;
  readonly service: string;
  /** FILE, for the commands that take one. */
  readonly file: string;
  readonly hosts: readonly string[];
  readonly prefix: string;
  readonly message: string | undefined;
  readonly by: string | undefined;
  readonly expectRevision: number | undefined;
  readonly to: number | undefined;
  readonly json: boolean;
}

/** What `argv` asks for: help text to print, or a command. Throws `UsageError`. */
export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { help: string } | Invocation {
  const [group, name, ...rest] = argv;
  if (group === undefined || group === "--help" || group === "-h" || group === "help") return { help: usage() };
  if (group !== "config") throw new UsageError(`unknown command "${group}"`, usage());
  if (name === undefined || name === "--help" || name === "-h") return { help: usage() };
  if (!Object.hasOwn(COMMANDS, name)) throw new UsageError(`unknown command "config ${name}"`, usage());
  const command = name as CommandName;
  const help = commandUsage(command);
  const spec = COMMANDS[command];
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: Object.fromEntries(
        [...spec.options, "help" as const].map((o) => {
          const { type, short } = OPTIONS[o];
          return [o, short === undefined ? { type } : { type, short }];
        }),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), help);
  }
  const values = parsed.values as Partial<Record<OptionName, string | boolean>>;
  if (values.help === true) return { help };
  const positionals = parsed.positionals;
  if (positionals.length !== spec.args.length)
    throw new UsageError(
      `config ${command} takes ${spec.args.join(" ")}; got ${positionals.length === 0 ? "nothing" : positionals.map((p) => JSON.stringify(p)).join(" ")}`,
      help,
    );
  const service = check(() => checkServiceName("weft config", positionals[0]), "SERVICE", help);
  const usesEtcd = (spec.options as readonly OptionName[]).includes("etcd");
  const etcd = (values.etcd as string | undefined) ?? env.WEFT_ETCD;
  if (usesEtcd && (etcd === undefined || etcd === ""))
    throw new UsageError("where is etcd? give --etcd URL[,URL…] or set WEFT_ETCD", help);
  return {
    command,
    service,
    file: positionals[1] ?? "",
    hosts: usesEtcd ? check(() => checkHosts("--etcd", (etcd as string).split(",")), "--etcd", help) : [],
    prefix:
      values.prefix === undefined
        ? "/weft/config/"
        : check(() => checkPrefix("--prefix", values.prefix), "--prefix", help),
    message: values.message as string | undefined,
    by: values.by as string | undefined,
    expectRevision: revision(values["expect-revision"], "--expect-revision"),
    to: revision(values.to, "--to"),
    json: values.json === true,
  };
}

/** A revision option: a whole number ≥ 0. */
function revision(value: string | boolean | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !/^\d+$/.test(value))
    throw new UsageError(`${option} takes a revision (a whole number, as \`weft config get\` shows); got "${value}"`);
  return Number(value);
}

/** Runs an option check; its InvalidOptionsError becomes a usage error with the same words. */
function check<T>(fn: () => T, what: string, help: string): T {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof InvalidOptionsError)) throw error;
    const message = error.message.replace(/^invalid option service/, `invalid ${what}`);
    throw new UsageError(message, help);
  }
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    "weft config — the control plane of weft's dynamic config: versioned, validated, compare-and-swap writes to etcd",
    "",
    "usage: weft config <command> [options] SERVICE [FILE]",
    "",
    "commands:",
    ...Object.entries(COMMANDS).map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`),
    "",
    "`weft config <command> --help` shows a command's options.",
    EXIT_CODES,
    "",
  ].join("\n");
}

function commandUsage(command: CommandName): string {
  const spec = COMMANDS[command];
  const options = [...(spec.options as readonly OptionName[]), "help" as const].map((o) => {
    const option = OPTIONS[o];
    const short = option.short === undefined ? "" : `-${option.short}, `;
    return [`${short}--${o}${option.value === undefined ? "" : ` ${option.value}`}`, option.help] as const;
  });
  const width = Math.max(...options.map(([flag]) => flag.length));
  return [
    `usage: weft config ${command} [options] ${spec.args.join(" ")}`,
    "",
    `${spec.summary}.`,
    "",
    "options:",
    ...options.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`),
    EXIT_CODES,
    "",
  ].join("\n");
}

const EXIT_CODES = "\nexit codes: 0 done, 1 bad input (usage, an invalid file), 2 etcd unreachable, 3 conflict";
