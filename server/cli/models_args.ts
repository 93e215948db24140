/** Arguments of `tabagent models …` and `tabagent login`. @module */
import { parseArgs } from "node:util";
import type { ConfigInput } from "../config/mod.ts";
import { UsageError } from "./usage_error.ts";

/** `tabagent models list|pull|rm`. */
export interface ModelsCommand {
  kind: "models";
  action: "list" | "pull" | "rm";
  flags: ConfigInput;
  /** Model ids; for pull, `org/name[:QUANT]`. */
  ids: string[];
  revision?: string;
  include: string[];
  connections?: number;
  /** Work on the cache directly even if a server runs. */
  local: boolean;
  /** Talk to this server instead of the configured one. */
  server?: string;
  json: boolean;
}

/** `tabagent login`. */
export interface LoginCommand {
  kind: "login";
  flags: ConfigInput;
  remove: boolean;
  verify: boolean;
}

const MODELS_OPTIONS = {
  "data-dir": { type: "string" },
  "log-level": { type: "string" },
  "model-cache-path": { type: "string" },
  host: { type: "string" },
  port: { type: "string", short: "p" },
  help: { type: "boolean", short: "h" },
  revision: { type: "string", short: "r" },
  include: { type: "string", multiple: true },
  connections: { type: "string", short: "c" },
  local: { type: "boolean" },
  server: { type: "string" },
  json: { type: "boolean" },
} as const;

const LOGIN_OPTIONS = {
  "data-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
  remove: { type: "boolean" },
  "no-verify": { type: "boolean" },
} as const;

function firstSentence(command: string, error: unknown): UsageError {
  const message = error instanceof Error ? error.message : String(error);
  const first = message.split(/\.\s|\n/)[0].replace(/^Unknown option/, "unknown option");
  return new UsageError(`${command}: ${first}. See 'tabagent ${command} --help'.`);
}

/** Parses what follows `tabagent models`; returns null when help was asked for. */
export function parseModelsArgs(args: string[]): ModelsCommand | null {
  let parsed;
  try {
    parsed = parseArgs({ args, options: MODELS_OPTIONS, strict: true, allowPositionals: true });
  } catch (error) {
    throw firstSentence("models", error);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) return null;
  const [verb, ...ids] = positionals;
  const action = verb === "ls" ? "list" : verb === "remove" || verb === "delete" ? "rm" : verb;
  if (action !== "list" && action !== "pull" && action !== "rm") {
    throw new UsageError(`models: unknown action '${verb}' (list, pull, rm). See 'tabagent models --help'.`);
  }
  if (action !== "list" && ids.length === 0) throw new UsageError(`models ${action}: name at least one model id`);
  let connections: number | undefined;
  if (values.connections !== undefined) {
    connections = Number(values.connections);
    if (!Number.isInteger(connections) || connections < 1 || connections > 32) {
      throw new UsageError("models: --connections must be a whole number from 1 to 32");
    }
  }
  return {
    kind: "models",
    action,
    flags: {
      dataDir: values["data-dir"],
      logLevel: values["log-level"],
      modelCachePath: values["model-cache-path"],
      host: values.host,
      port: values.port,
    },
    ids,
    revision: values.revision,
    include: values.include ?? [],
    connections,
    local: values.local ?? false,
    server: values.server,
    json: values.json ?? false,
  };
}

/** Parses what follows `tabagent login`; returns null when help was asked for. */
export function parseLoginArgs(args: string[]): LoginCommand | null {
  let parsed;
  try {
    parsed = parseArgs({ args, options: LOGIN_OPTIONS, strict: true, allowPositionals: false });
  } catch (error) {
    throw firstSentence("login", error);
  }
  const { values } = parsed;
  if (values.help) return null;
  return {
    kind: "login",
    flags: { dataDir: values["data-dir"] },
    remove: values.remove ?? false,
    verify: !(values["no-verify"] ?? false),
  };
}
