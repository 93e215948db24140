import { parseArgs } from "node:util";
import type { ConfigInput } from "../config/mod.ts";
import { type LoginCommand, type ModelsCommand, parseLoginArgs, parseModelsArgs } from "./models_args.ts";
import type { MemoryStatsCommand } from "./memory_command.ts";
import { UsageError } from "./usage_error.ts";

/** What the command line asked for. */
export type Command =
  | { kind: "help"; topic?: string }
  | { kind: "version" }
  | { kind: "serve"; flags: ConfigInput }
  | { kind: "token"; flags: ConfigInput }
  | { kind: "doctor"; flags: ConfigInput }
  | { kind: "install-host"; flags: ConfigInput; browsers: string[]; uninstall: boolean }
  | { kind: "backup" | "restore"; flags: ConfigInput; dir: string }
  | ModelsCommand
  | LoginCommand
  | MemoryStatsCommand & { flags: ConfigInput };

const COMMON = {
  "data-dir": { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const SERVE = {
  ...COMMON,
  mode: { type: "string", short: "m" },
  host: { type: "string" },
  port: { type: "string", short: "p" },
  "db-path": { type: "string" },
  "model-cache-path": { type: "string" },
  "static-dir": { type: "string" },
  "log-format": { type: "string" },
  "no-ml": { type: "boolean" },
  "no-auth": { type: "boolean" },
  origin: { type: "string", multiple: true },
  "allowed-host": { type: "string", multiple: true },
  "memory-backend": { type: "string" },
  "memory-grpc-address": { type: "string" },
  "ml-workers": { type: "string" },
  "ml-worker": { type: "string", multiple: true },
  "ml-dispatch": { type: "string" },
  "allow-anonymous-local": { type: "boolean" },
  parallel: { type: "string" },
  "prompt-cache": { type: "string" },
  weaver: { type: "string" },
  "weaver-model": { type: "string" },
  "weaver-merge-threshold": { type: "string" },
  "llama-addon": { type: "string" },
  "llama-threads": { type: "string" },
} as const;

const MEMORY_COMMAND = {
  ...COMMON,
  "db-path": { type: "string" },
  "memory-grpc-address": { type: "string" },
} as const;

const INSTALL_HOST = {
  ...COMMON,
  browser: { type: "string", multiple: true },
  uninstall: { type: "boolean" },
} as const;

/** The subcommands, for help and for "did you mean". */
export const COMMANDS = [
  "serve",
  "token",
  "install-host",
  "doctor",
  "models",
  "login",
  "backup",
  "restore",
  "memory",
  "help",
] as const;

const DOCTOR = {
  ...COMMON,
  "model-cache-path": { type: "string" },
  "no-ml": { type: "boolean" },
  port: { type: "string", short: "p" },
  "llama-addon": { type: "string" },
  "llama-threads": { type: "string" },
} as const;

function parse<T extends Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>>(
  command: string,
  args: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // node:util's messages are long and mention internals; keep the first sentence.
    const first = message.split(/\.\s|\n/)[0].replace(/^Unknown option/, "unknown option");
    throw new UsageError(`${command}: ${first}. See 'tabagent ${command} --help'.`);
  }
}

function commonFlags(values: Record<string, unknown>): ConfigInput {
  return {
    dataDir: values["data-dir"] as string | undefined,
    logLevel: values["log-level"] as string | undefined,
  };
}

/**
 * Parses `tabagent`'s arguments. Chrome starts a native host with the caller's origin as its only
 * argument, so `chrome-extension://…/` alone means `serve --mode native`.
 */
export function parseCommandLine(argv: string[]): Command {
  const [first, ...rest] = argv;
  if (first === undefined) return { kind: "serve", flags: {} };
  if (first === "--version" || first === "-V" || first === "version") return { kind: "version" };
  if (first === "--help" || first === "-h") return { kind: "help" };
  if (first === "help") return { kind: "help", topic: rest[0] };
  if (/^chrome-extension:\/\//.test(first)) {
    // Chrome starting us as a native host: its origin, Windows' --parent-window, then the flags
    // the launcher script carries.
    const command = parseServe(rest.filter((arg) => !arg.startsWith("--parent-window=")));
    return command.kind === "serve" ? { kind: "serve", flags: { ...command.flags, mode: "native" } } : command;
  }
  if (first.startsWith("-")) return parseServe(argv);
  switch (first) {
    case "serve":
      return parseServe(rest);
    case "token": {
      const { values } = parse("token", rest, COMMON);
      if (values.help) return { kind: "help", topic: "token" };
      return { kind: "token", flags: commonFlags(values) };
    }
    case "doctor": {
      const { values } = parse("doctor", rest, DOCTOR);
      if (values.help) return { kind: "help", topic: "doctor" };
      return {
        kind: "doctor",
        flags: {
          ...commonFlags(values),
          modelCachePath: values["model-cache-path"],
          noMl: values["no-ml"],
          port: values.port,
          llamaAddon: values["llama-addon"],
          llamaThreads: values["llama-threads"],
        },
      };
    }
    case "install-host": {
      const { values } = parse("install-host", rest, INSTALL_HOST);
      if (values.help) return { kind: "help", topic: "install-host" };
      return {
        kind: "install-host",
        flags: commonFlags(values),
        browsers: values.browser ?? [],
        uninstall: values.uninstall ?? false,
      };
    }
    case "models":
      return parseModelsArgs(rest) ?? { kind: "help", topic: "models" };
    case "login":
      return parseLoginArgs(rest) ?? { kind: "help", topic: "login" };
    case "backup":
    case "restore": {
      const { values, positionals } = parse(first, rest, MEMORY_COMMAND, true);
      if (values.help) return { kind: "help", topic: first };
      if (positionals.length !== 1) {
        throw new UsageError(`${first}: expected one folder, e.g. 'tabagent ${first} ~/tabagent-backup'.`);
      }
      return {
        kind: first,
        flags: {
          ...commonFlags(values),
          dbPath: values["db-path"],
          memoryGrpcAddress: values["memory-grpc-address"],
        },
        dir: positionals[0],
      };
    }
    case "memory":
      return parseMemory(rest);
    default: {
      const near = COMMANDS.find((c) => editDistance(c, first) <= 2);
      throw new UsageError(
        `unknown command '${first}'.${near ? ` Did you mean '${near}'?` : ""} See 'tabagent --help'.`,
      );
    }
  }
}

/** `tabagent memory stats [--json]`. */
function parseMemory(rest: string[]): Command {
  const [action, ...args] = rest;
  if (action === undefined || action === "--help" || action === "-h") return { kind: "help", topic: "memory" };
  if (action !== "stats") {
    throw new UsageError(`memory: unknown action '${action}' (stats). See 'tabagent memory --help'.`);
  }
  const { values } = parse("memory", args, { ...MEMORY_COMMAND, json: { type: "boolean" } });
  if (values.help) return { kind: "help", topic: "memory" };
  return {
    kind: "memory",
    action,
    json: values.json ?? false,
    flags: { ...commonFlags(values), dbPath: values["db-path"], memoryGrpcAddress: values["memory-grpc-address"] },
  };
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

function parseServe(args: string[]): Command {
  const { values } = parse("serve", args, SERVE);
  if (values.help) return { kind: "help", topic: "serve" };
  return {
    kind: "serve",
    flags: {
      ...commonFlags(values),
      mode: values.mode,
      host: values.host,
      port: values.port,
      dbPath: values["db-path"],
      modelCachePath: values["model-cache-path"],
      staticDir: values["static-dir"],
      logFormat: values["log-format"],
      noMl: values["no-ml"],
      noAuth: values["no-auth"],
      origins: values.origin,
      allowedHosts: values["allowed-host"],
      memoryBackend: values["memory-backend"],
      memoryGrpcAddress: values["memory-grpc-address"],
      mlWorkers: values["ml-workers"],
      mlRemoteWorkers: values["ml-worker"],
      mlDispatch: values["ml-dispatch"],
      allowAnonymousLocal: values["allow-anonymous-local"],
      parallel: values.parallel,
      promptCache: values["prompt-cache"],
      weaver: values.weaver,
      weaverModel: values["weaver-model"],
      weaverMergeThreshold: values["weaver-merge-threshold"],
      llamaAddon: values["llama-addon"],
      llamaThreads: values["llama-threads"],
    },
  };
}
