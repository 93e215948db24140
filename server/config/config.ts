import { z } from "zod";
import { validationError } from "../errors/mod.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../log/mod.ts";
import {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  MAX_LLAMA_THREADS,
} from "./limits.ts";
import { defaultDataDir, joinPath } from "./paths.ts";

/** Run modes; each starts exactly its components. */
export const MODES = ["all", "web", "http", "webrtc", "native"] as const;
/** A run mode. */
export type Mode = typeof MODES[number];

/**
 * How the server's components reach memory: `local` calls the stores in-process; `grpc` goes
 * through the DatabaseService, as a client in another process would.
 */
export const MEMORY_BACKENDS = ["local", "grpc"] as const;

/** Where the memory DatabaseService listens by default: a Unix socket in the data dir (0600). */
export function defaultMemoryGrpcAddress(platform: typeof Deno.build.os, dataDir: string): string {
  const socket = joinPath(platform, dataDir, "memory.sock");
  // Unix socket paths are limited to ~104 bytes; Windows named pipes are not `unix:` addresses.
  return platform === "windows" || socket.length > 100 ? "127.0.0.1:0" : `unix:${socket}`;
}

/** The default port, chosen to stay clear of Ollama (11434) and common dev servers. */
export const DEFAULT_PORT = 8765;

/**
 * The extension's id, fixed by the `key` in `extension/static/manifest.json`: always allowed as a
 * CORS origin and in the native host manifest.
 */
export const EXTENSION_ID = "elgmcgkdbcjcidkoghpbchchoenbofnl";

/** Host names that are loopback by definition. */
export const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1", "[::1]"] as const;

/** The settings that flags and environment can set; all optional, defaults fill the rest. */
export interface ConfigInput {
  mode?: string;
  host?: string;
  port?: string | number;
  dataDir?: string;
  dbPath?: string;
  modelCachePath?: string;
  logLevel?: string;
  logFormat?: string;
  noMl?: boolean;
  noAuth?: boolean;
  origins?: string[];
  allowedHosts?: string[];
  staticDir?: string;
  maxBodyBytes?: string | number;
  requestTimeoutMs?: string | number;
  shutdownGraceMs?: string | number;
  memoryBackend?: string;
  memoryGrpcAddress?: string;
  mlWorkers?: string | number;
  mlRemoteWorkers?: string[];
  mlDispatch?: string;
  mlPython?: string;
  allowAnonymousLocal?: boolean;
  /** Requests one GGUF model generates at once (its parallel sequences, decoded in one batch). */
  parallel?: string | number;
  /** Idle conversations per GGUF model whose KV state is kept (prompt cache). */
  promptCache?: string | number;
  /** How the knowledge graph is extracted: rules, model or off. */
  weaver?: string;
  /** The GGUF the weaver's model path uses. */
  weaverModel?: string;
  /** Name-embedding similarity at which the weaver merges entities. */
  weaverMergeThreshold?: string | number;
  /**
   * `prebuilt`, or a node-llama-cpp binding built here against a local llama.cpp
   * (scripts/llama_native.ts); unset, the one setup built is used when there is a current one.
   */
  llamaAddon?: string;
  /** llama.cpp threads per chat model, overriding the thread policy (server/inference/llama/threads.ts). */
  llamaThreads?: string | number;
}

/** How the weaver extracts the knowledge graph (server/memory/weaver/). */
export const WEAVER_MODES = ["rules", "model", "off"] as const;
/** The model the weaver's model path uses by default (SmolLM2-135M-Instruct, in the Hub's name). */
export const DEFAULT_WEAVER_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";

const originSchema = z.string().regex(
  /^(https?|chrome-extension|moz-extension):\/\/[^\s/]+$/,
  "must be scheme://host[:port] with no path, e.g. chrome-extension://<id> or http://localhost:3000",
);
const hostNameSchema = z.string().regex(/^[A-Za-z0-9.\-:\[\]]+$/, "must be a host name or IP address");

/** The schema a finished configuration satisfies. */
export const configSchema = z.object({
  mode: z.enum(MODES),
  host: hostNameSchema,
  port: z.coerce.number().int().min(0).max(65535),
  dataDir: z.string().min(1),
  dbPath: z.string().min(1),
  modelCachePath: z.string().min(1),
  tokenPath: z.string().min(1),
  logLevel: z.enum(LOG_LEVELS),
  logFormat: z.enum(LOG_FORMATS),
  ml: z.boolean(),
  auth: z.boolean(),
  allowedOrigins: z.array(originSchema),
  allowedHosts: z.array(hostNameSchema),
  staticDir: z.string().min(1),
  maxBodyBytes: z.coerce.number().int().min(1024),
  requestTimeoutMs: z.coerce.number().int().min(100),
  shutdownGraceMs: z.coerce.number().int().min(0),
  memoryBackend: z.enum(MEMORY_BACKENDS),
  parallel: z.coerce.number().int().min(1).max(64).optional(),
  promptCache: z.coerce.number().int().min(0).max(256).optional(),
  llamaAddon: z.union([
    z.literal("prebuilt"),
    z.string().regex(/\.node$/, "must be 'prebuilt' or the path of a llama-addon.node"),
  ]).optional(),
  llamaThreads: z.coerce.number().int().min(1).max(MAX_LLAMA_THREADS).optional(),
  memoryGrpcAddress: z.string().regex(
    /^(unix:.+|(127\.0\.0\.1|localhost|\[::1\]):\d{1,5})$/,
    "must be unix:<path> or a loopback host:port such as 127.0.0.1:0",
  ),
  mlWorkers: z.coerce.number().int().min(0).max(64),
  mlRemoteWorkers: z.array(z.string().regex(/^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$/, "must be host:port")),
  mlDispatch: z.enum(["least-loaded", "round-robin"]),
  mlPython: z.string().min(1).optional(),
  allowAnonymousLocal: z.boolean(),
  weaver: z.enum(WEAVER_MODES),
  weaverModel: z.string().min(1).max(300),
  weaverMergeThreshold: z.coerce.number().min(0.5).max(1),
});

/** The server's settings, read once at start. */
export type Config = z.infer<typeof configSchema>;

function truthy(value: string | undefined): boolean | undefined {
  if (value === undefined || value === "") return undefined;
  return ["1", "true", "yes", "on"].includes(value.toLowerCase());
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  return value.split(",").map((part) => part.trim()).filter(Boolean);
}

/** Reads the `TABAGENT_*` environment variables into a {@link ConfigInput}. */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>): ConfigInput {
  return {
    mode: env.TABAGENT_MODE,
    host: env.TABAGENT_HOST,
    port: env.TABAGENT_PORT,
    dataDir: env.TABAGENT_DATA_DIR,
    dbPath: env.TABAGENT_DB_PATH,
    modelCachePath: env.TABAGENT_MODEL_CACHE_PATH,
    logLevel: env.TABAGENT_LOG_LEVEL,
    logFormat: env.TABAGENT_LOG_FORMAT,
    noMl: truthy(env.TABAGENT_NO_ML),
    noAuth: truthy(env.TABAGENT_NO_AUTH),
    origins: list(env.TABAGENT_ORIGINS),
    allowedHosts: list(env.TABAGENT_ALLOWED_HOSTS),
    staticDir: env.TABAGENT_STATIC_DIR,
    maxBodyBytes: env.TABAGENT_MAX_BODY_BYTES,
    requestTimeoutMs: env.TABAGENT_REQUEST_TIMEOUT_MS,
    shutdownGraceMs: env.TABAGENT_SHUTDOWN_GRACE_MS,
    memoryBackend: env.TABAGENT_MEMORY_BACKEND,
    memoryGrpcAddress: env.TABAGENT_MEMORY_GRPC_ADDRESS,
    mlWorkers: env.TABAGENT_ML_WORKERS,
    mlRemoteWorkers: list(env.TABAGENT_ML_WORKER),
    mlDispatch: env.TABAGENT_ML_DISPATCH,
    mlPython: env.TABAGENT_ML_PYTHON,
    allowAnonymousLocal: truthy(env.TABAGENT_ALLOW_ANONYMOUS_LOCAL),
    parallel: env.TABAGENT_PARALLEL,
    promptCache: env.TABAGENT_PROMPT_CACHE,
    weaver: env.TABAGENT_WEAVER,
    weaverModel: env.TABAGENT_WEAVER_MODEL,
    weaverMergeThreshold: env.TABAGENT_WEAVER_MERGE_THRESHOLD,
    llamaAddon: env.TABAGENT_LLAMA_ADDON,
    llamaThreads: env.TABAGENT_LLAMA_THREADS,
  };
}

function firstDefined<T>(...values: (T | undefined)[]): T | undefined {
  return values.find((value) => value !== undefined);
}

/** True when `host` can only be reached from this machine. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127(\.\d{1,3}){3}$/.test(bare) || bare.endsWith(".localhost");
}

/**
 * Resolves the configuration: flags > environment > defaults. Throws a `validation_failed`
 * {@link TabAgentError} naming the setting when a value is bad, and refuses `--no-auth` on a
 * non-loopback bind.
 *
 * @example
 * ```ts
 * const config = resolveConfig({ port: "9000" }, configFromEnv(Deno.env.toObject()));
 * ```
 */
export function resolveConfig(
  flags: ConfigInput,
  env: ConfigInput,
  system: {
    platform?: typeof Deno.build.os;
    environment?: Readonly<Record<string, string | undefined>>;
    repoDir?: string;
  } = {},
): Config {
  const platform = system.platform ?? Deno.build.os;
  const environment = system.environment ?? {};
  const pick = <K extends keyof ConfigInput>(key: K) => firstDefined(flags[key], env[key]);
  const dataDir = pick("dataDir") ?? defaultDataDir(platform, environment);
  const host = pick("host") ?? "127.0.0.1";
  const candidate = {
    mode: pick("mode") ?? "all",
    host,
    port: pick("port") ?? DEFAULT_PORT,
    dataDir,
    dbPath: pick("dbPath") ?? joinPath(platform, dataDir, "tabagent_db"),
    modelCachePath: pick("modelCachePath") ?? joinPath(platform, dataDir, "models"),
    tokenPath: joinPath(platform, dataDir, "api_token"),
    logLevel: pick("logLevel") ?? "info",
    logFormat: pick("logFormat") ?? "auto",
    ml: !(pick("noMl") ?? false),
    auth: !(pick("noAuth") ?? false),
    allowedOrigins: [`chrome-extension://${EXTENSION_ID}`, ...(pick("origins") ?? [])],
    allowedHosts: pick("allowedHosts") ?? [],
    staticDir: pick("staticDir") ?? `${system.repoDir ?? "."}/extension/dist`,
    maxBodyBytes: pick("maxBodyBytes") ?? DEFAULT_MAX_BODY_BYTES,
    requestTimeoutMs: pick("requestTimeoutMs") ?? DEFAULT_REQUEST_TIMEOUT_MS,
    shutdownGraceMs: pick("shutdownGraceMs") ?? DEFAULT_SHUTDOWN_GRACE_MS,
    memoryBackend: pick("memoryBackend") ?? "local",
    memoryGrpcAddress: pick("memoryGrpcAddress") ?? defaultMemoryGrpcAddress(platform, dataDir),
    // Remote workers replace the local one unless local ones are asked for too.
    mlWorkers: pick("mlWorkers") ?? ((pick("mlRemoteWorkers")?.length ?? 0) > 0 ? 0 : 1),
    mlRemoteWorkers: pick("mlRemoteWorkers") ?? [],
    mlDispatch: pick("mlDispatch") ?? "least-loaded",
    mlPython: pick("mlPython"),
    allowAnonymousLocal: pick("allowAnonymousLocal") ?? false,
    parallel: pick("parallel"),
    promptCache: pick("promptCache"),
    weaver: pick("weaver") ?? "rules",
    weaverModel: pick("weaverModel") ?? DEFAULT_WEAVER_MODEL,
    weaverMergeThreshold: pick("weaverMergeThreshold") ?? 0.85,
    llamaAddon: pick("llamaAddon"),
    llamaThreads: pick("llamaThreads"),
  };
  const parsed = configSchema.safeParse(candidate);
  if (!parsed.success) throw validationError("configuration", parsed.error.issues);
  const config = parsed.data;
  if (!config.auth && !isLoopbackHost(config.host)) {
    throw validationError("configuration", [{
      path: ["noAuth"],
      message: `--no-auth is refused when binding to ${config.host}: it is only allowed on a loopback address`,
    }]);
  }
  if (config.allowAnonymousLocal && !isLoopbackHost(config.host)) {
    throw validationError("configuration", [{
      path: ["allowAnonymousLocal"],
      message: `--allow-anonymous-local is refused when binding to ${config.host}: it is only allowed on a loopback ` +
        "address",
    }]);
  }
  return config;
}
