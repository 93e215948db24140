/**
 * The composition root: creates every component once for the chosen mode, wires them, and owns
 * the start/stop order. Nothing else constructs components.
 *
 * @example
 * ```ts
 * const app = await createApp(config);
 * await app.start();
 * await app.stop();
 * ```
 * @module
 */
import { loadOrCreateToken } from "./auth/mod.ts";
import { type Config, ensureWritableDir, EXTENSION_ID } from "./config/mod.ts";
import { TabAgentError } from "./errors/mod.ts";
import { detectHardware } from "./hardware/mod.ts";
import { ModelOrchestrator, Scheduler } from "./inference/mod.ts";
import type { OpenAPIHono } from "@hono/zod-openapi";
import {
  chatRoutes,
  completionRoutes,
  createHttpApp,
  embeddingRoutes,
  type HttpEnv,
  HttpServer,
  memoryRoutes,
  mlRoutes,
  modelRoutes,
  OLLAMA_ANONYMOUS_ROUTES,
  ollamaRoutes,
  systemRoutes,
  tokenizeRoutes,
  visionRoutes,
  webrtcRoutes,
} from "./http/mod.ts";
import { InstanceLock, Lifecycle } from "./lifecycle/mod.ts";
import { createLogger, type Logger } from "./log/mod.ts";
import { type MemoryClient, MemoryComponent, type MemoryEmbedder } from "./memory/mod.ts";
import { DEFAULT_EMBEDDING_MODEL } from "./memory/query/mod.ts";
import type { GenerateJson } from "./memory/weaver/model.ts";
import { MetricsRegistry } from "./metrics/mod.ts";
import { ModelsComponent } from "./models/mod.ts";
import { MlService } from "./ml/mod.ts";
import { locateServer, NativeHost, type ServerInfo, ServerRecordComponent, spawnDetached } from "./native/mod.ts";
import { VERSION } from "./version.ts";
import { WEBRTC_IDLE_TIMEOUT_MS, WEBRTC_MAX_SESSIONS } from "./config/mod.ts";
import { type FrameDetector, mlFaceDetector, WebRtcSessions } from "./webrtc/mod.ts";

/** The repository (or compiled bundle) root: static files and node_modules are found from it. */
export const REPO_ROOT = new URL("../", import.meta.url);

/** A running (or ready to run) TabAgent. */
export interface App {
  readonly config: Config;
  readonly lifecycle: Lifecycle;
  readonly log: Logger;
  /** The HTTP server's URL, when the mode has one and it has started. */
  readonly url: string | undefined;
  /** The memory client (modes all, web, http); calls fail with `unavailable` until started. */
  readonly memory: MemoryClient | undefined;
  /** The Python ML service (every mode but native, unless --no-ml): `detect()` and `detectStream()` for vision. */
  readonly ml: MlService | undefined;
  /** Resolves when the app wants to exit by itself (native mode: Chrome closed stdin). */
  readonly ended: Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Streams and hooks a test (or main) can swap. */
export interface AppOptions {
  log?: Logger;
  stdin?: ReadableStream<Uint8Array>;
  stdout?: WritableStream<Uint8Array>;
  /** How to run this program (native mode starts `<command> serve` when no server runs). */
  serverCommand?: string[];
}

/** The Python ML service for `config`: local workers from the repo's venv, plus `--ml-worker`s. */
function createMlService(config: Config, token: string | null, log: Logger, serverUrl: () => string | undefined) {
  const root = decodeURIComponent(REPO_ROOT.pathname).replace(/\/$/, "");
  const venvPython = Deno.build.os === "windows"
    ? `${root}/python-ml/.venv/Scripts/python.exe`
    : `${root}/python-ml/.venv/bin/python`;
  const caPath = Deno.env.get("TABAGENT_ML_CA");
  return new MlService({
    workers: config.mlWorkers,
    remote: config.mlRemoteWorkers,
    dispatch: config.mlDispatch,
    python: config.mlPython ?? venvPython,
    packageDir: `${root}/python-ml`,
    dataDir: config.dataDir,
    modelCachePath: config.modelCachePath,
    token,
    log: log.child("ml"),
    logLevel: config.logLevel,
    threads: Math.max(1, Math.floor(navigator.hardwareConcurrency / Math.max(1, config.mlWorkers))),
    remoteCa: caPath ? Deno.readFileSync(caPath) : undefined,
    remoteTlsName: Deno.env.get("TABAGENT_ML_TLS_NAME"),
    serverUrl,
  });
}

/** What the builders below share while `createApp` wires one server mode. */
interface Wiring {
  readonly config: Config;
  readonly log: Logger;
  readonly lifecycle: Lifecycle;
  readonly metrics: MetricsRegistry;
  readonly token: string | null;
  /** Routers mounted on the HTTP app, in this order. */
  readonly routers: OpenAPIHono<HttpEnv>[];
  /** Aborted when the HTTP server begins to stop (streams end on it). */
  readonly shutdownSignal: AbortSignal;
  /** The HTTP server's URL once it listens. */
  readonly serverUrl: () => string | undefined;
}

/** Builds the app for `config.mode`. Reads the token and checks the data dir; starts nothing. */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.log ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const lifecycle = new Lifecycle(log.child("lifecycle"));
  const metrics = createMetrics(config);
  await ensureWritableDir(config.dataDir, { what: "data dir", flags: "--data-dir" });
  const token = config.auth ? await loadOrCreateToken(config.tokenPath) : null;
  const ended = Promise.withResolvers<void>();
  let http: HttpServer | undefined;
  let memory: MemoryComponent | undefined;
  let ml: MlService | undefined;

  if (config.mode === "native") {
    lifecycle.add(createNativeHost(config, options, log, () => ended.resolve()));
  } else {
    lifecycle.add(new InstanceLock(config.dataDir));
    const httpStopping = new AbortController();
    const wiring: Wiring = {
      config,
      log,
      lifecycle,
      metrics,
      token,
      routers: [],
      shutdownSignal: httpStopping.signal,
      serverUrl: () => http?.url,
    };
    if (config.mode === "all" || config.mode === "web" || config.mode === "http") {
      ({ memory, ml } = await addApi(wiring));
    }
    if (config.allowAnonymousLocal) {
      log.warn("anonymous local access is on: these Ollama routes answer without the token", {
        routes: OLLAMA_ANONYMOUS_ROUTES,
      });
    }
    if (config.mode === "webrtc" && config.ml) {
      // Tab video needs the vision model even without the rest of the API.
      ml = lifecycle.add(createMlService(config, token, log, wiring.serverUrl));
    }
    // Issue 13: modes web and webrtc start tab video; all includes it.
    if (config.mode === "all" || config.mode === "web" || config.mode === "webrtc") addWebRtc(wiring, ml);
    http = addHttpServer(wiring);
    http.shutdownSignal.addEventListener("abort", () => httpStopping.abort(http!.shutdownSignal.reason));
  }

  return {
    config,
    lifecycle,
    log,
    get url() {
      return http?.url;
    },
    memory: memory?.memory,
    ml,
    ended: ended.promise,
    start: () => lifecycle.startAll(),
    stop: () => lifecycle.stopAll(config.shutdownGraceMs),
  };
}

/** The process-wide metrics: build info and resident memory. */
function createMetrics(config: Config): MetricsRegistry {
  const metrics = new MetricsRegistry();
  metrics.gauge("tabagent_build_info", "Build information", ["version", "mode"]).set({
    version: VERSION,
    mode: config.mode,
  }, 1);
  metrics.gauge(
    "tabagent_process_resident_memory_bytes",
    "Resident memory",
    [],
    (g) => g.set(undefined, Deno.memoryUsage().rss),
  );
  return metrics;
}

/** Native mode: the messaging host that finds (or starts) the server for the extension. */
function createNativeHost(config: Config, options: AppOptions, log: Logger, onEnd: () => void): NativeHost {
  return new NativeHost({
    input: options.stdin ?? Deno.stdin.readable,
    output: options.stdout ?? Deno.stdout.writable,
    locate: async (): Promise<ServerInfo | null> => {
      const record = await locateServer(config.dataDir);
      if (!record) return null;
      const token = config.auth ? await loadOrCreateToken(config.tokenPath) : null;
      return { url: record.url, token, version: record.version };
    },
    startServer: options.serverCommand
      ? () =>
        spawnDetached(
          [...options.serverCommand!, "serve", "--data-dir", config.dataDir],
          `${config.dataDir}/server.log`,
        )
      : undefined,
    startCommand: `tabagent serve --data-dir ${config.dataDir}`,
    log: log.child("native"),
    onEnd,
  });
}

/** The API modes' components (memory, models, inference, ML) and their routes, in start order. */
async function addApi(w: Wiring): Promise<{ memory: MemoryComponent; ml: MlService | undefined }> {
  const { config, lifecycle, log, routers, shutdownSignal } = w;
  // memories are embedded through the orchestrator (created below) with the in-process MiniLM
  const embedder: { orchestrator?: ModelOrchestrator } = {};
  const memory = lifecycle.add(
    new MemoryComponent({
      config,
      token: w.token,
      log: log.child("memory"),
      embed: (texts, options) => embedWith(embedder.orchestrator, DEFAULT_EMBEDDING_MODEL, texts, options),
      generate: (request) => generateJsonWith(embedder.orchestrator, config.weaverModel, request),
    }),
  );
  routers.push(memoryRoutes({ memory: memory.memory, backupDir: `${config.dataDir}/backups` }));
  const { models, orchestrator, hardware } = await addInference(w);
  embedder.orchestrator = orchestrator;
  const ml = config.ml ? lifecycle.add(createMlService(config, w.token, log, w.serverUrl)) : undefined;
  if (ml) routers.push(visionRoutes({ ml, deadlineMs: config.requestTimeoutMs }), mlRoutes({ ml }));
  routers.push(
    chatRoutes({ orchestrator, shutdownSignal, memory: memory.memory, ml }),
    completionRoutes({ orchestrator, shutdownSignal, ml }),
    embeddingRoutes({ orchestrator, ml }),
    tokenizeRoutes({ orchestrator }),
    systemRoutes({ orchestrator, hardware }),
  );
  routers.push(
    modelRoutes({
      models,
      shutdownSignal,
      isLoaded: (id) => orchestrator.isLoaded(id),
      unload: async (id) => {
        await orchestrator.unloadForDelete(id);
        await ml?.unload(id);
      },
    }),
  );
  routers.push(ollamaRoutes({
    orchestrator,
    models,
    version: VERSION,
    memory: memory.memory,
    ml,
    shutdownSignal,
    serveRoot: config.mode === "http",
  }));
  return { memory, ml };
}

/** The model cache and the orchestrator that loads models from it within the hardware's budget. */
async function addInference(w: Wiring) {
  const { config, lifecycle, log } = w;
  const models = lifecycle.add(
    new ModelsComponent({
      modelCachePath: config.modelCachePath,
      dataDir: config.dataDir,
      env: Deno.env.toObject(),
      log: log.child("models"),
    }),
  );
  const hardware = await detectHardware();
  const orchestrator = lifecycle.add(
    new ModelOrchestrator({
      models: models.cache,
      hardware,
      scheduler: new Scheduler(),
      log: log.child("inference"),
      sequencesPerModel: config.parallel,
      promptCacheSequences: config.promptCache,
      llamaAddon: config.llamaAddon,
      llamaThreads: config.llamaThreads,
    }),
  );
  return { models, orchestrator, hardware };
}

/** Tab video: WebRTC sessions whose frames go to the ML service's face detection. */
function addWebRtc(w: Wiring, ml: MlService | undefined): void {
  // Without the ML service (--no-ml) frames are answered with errors.
  const frameDetector: FrameDetector | undefined = ml ? mlFaceDetector(ml) : undefined;
  const webrtc = w.lifecycle.add(
    new WebRtcSessions({
      maxSessions: WEBRTC_MAX_SESSIONS,
      idleTimeoutMs: WEBRTC_IDLE_TIMEOUT_MS,
      log: w.log.child("webrtc"),
      metrics: w.metrics,
      detector: () => frameDetector,
    }),
  );
  w.routers.push(webrtcRoutes({ sessions: webrtc }));
}

/** The HTTP listener over every router, and the record that lets native mode find it. */
function addHttpServer(w: Wiring): HttpServer {
  const { config, lifecycle, log } = w;
  const app = createHttpApp({
    config,
    version: VERSION,
    log: log.child("http"),
    lifecycle,
    metrics: w.metrics,
    token: w.token,
    routers: w.routers,
    serveStaticFiles: config.mode === "all" || config.mode === "web",
    nodeModules: new URL("node_modules/", REPO_ROOT),
    anonymousRoutes: config.allowAnonymousLocal ? OLLAMA_ANONYMOUS_ROUTES : [],
  });
  const http = lifecycle.add(new HttpServer({ app, host: config.host, port: config.port, log: log.child("http") }));
  lifecycle.add(
    new ServerRecordComponent({ dataDir: config.dataDir, url: w.serverUrl, version: VERSION, mode: config.mode }),
  );
  return http;
}

export { EXTENSION_ID };

/**
 * The weaver's model path: one chat turn with `model` (a GGUF) at background priority, its output
 * constrained to the request's JSON Schema (node-llama-cpp builds a grammar from it).
 */
export async function generateJsonWith(
  orchestrator: ModelOrchestrator | undefined,
  model: string,
  request: Parameters<GenerateJson>[0],
): Promise<string> {
  if (!orchestrator) throw new TabAgentError("unavailable", "The inference component is not created yet");
  const handle = await orchestrator.acquire(model);
  try {
    const llama = handle.llama;
    if (!llama) throw new TabAgentError("config_invalid", `--weaver-model ${model} is not a GGUF chat model`);
    return await handle.run({ priority: "background", signal: request.signal }, async (lease) => {
      const prepared = await llama.prepareChat({
        messages: [{ role: "system", content: request.system }, { role: "user", content: request.user }],
        jsonSchema: request.schema,
        temperature: 0,
        maxTokens: request.maxTokens,
      });
      return (await llama.generateChat(prepared, { signal: lease.signal })).text;
    });
  } finally {
    handle.release();
  }
}

/** Embeds memory texts with `model` through the orchestrator (its scheduler orders the priorities). */
async function embedWith(
  orchestrator: ModelOrchestrator | undefined,
  model: string,
  texts: string[],
  options: Parameters<MemoryEmbedder>[1],
): Promise<Float32Array[]> {
  if (!orchestrator) throw new TabAgentError("unavailable", "The inference component is not created yet");
  const handle = await orchestrator.acquire(model);
  try {
    return await handle.run({ priority: options.priority, signal: options.signal }, async (lease) => {
      const result = handle.onnx
        ? await handle.onnx.embed(texts, lease.signal)
        : await handle.llama!.embed(texts, lease.signal);
      return result.vectors;
    });
  } finally {
    handle.release();
  }
}
