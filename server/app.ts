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
import { type Config, EXTENSION_ID } from "./config/mod.ts";
import { TabAgentError } from "./errors/mod.ts";
import { tokenizeRoutes } from "./http/tokenize.ts";
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
  modelRoutes,
  systemRoutes,
  webrtcRoutes,
} from "./http/mod.ts";
import { OLLAMA_ANONYMOUS_ROUTES, ollamaRoutes } from "./http/ollama/mod.ts";
import { InstanceLock, Lifecycle } from "./lifecycle/mod.ts";
import { createLogger, type Logger } from "./log/mod.ts";
import { type MemoryClient, MemoryComponent, type MemoryEmbedder } from "./memory/mod.ts";
import { DEFAULT_EMBEDDING_MODEL } from "./memory/query/mod.ts";
import { MetricsRegistry } from "./metrics/mod.ts";
import { ModelsComponent } from "./models/mod.ts";
import { MlService } from "./ml/mod.ts";
import { mlRoutes } from "./http/ml.ts";
import { visionRoutes } from "./http/vision.ts";
import { locateServer, NativeHost, type ServerInfo, ServerRecordComponent, spawnDetached } from "./native/mod.ts";
import { VERSION } from "./version.ts";
import { WEBRTC_IDLE_TIMEOUT_MS, WEBRTC_MAX_SESSIONS } from "./config/mod.ts";
import { type FrameDetector, WebRtcSessions } from "./webrtc/mod.ts";

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
  /** The Python ML service (modes all, web, http, unless --no-ml): `detect()` and `detectStream()` for vision. */
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

async function ensureWritableDir(path: string, what: string): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true, mode: 0o700 });
    const probe = `${path}/.write-probe-${crypto.randomUUID()}`;
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied || (error as { code?: string }).code === "EROFS") {
      throw new TabAgentError("config_invalid", `The ${what} ${path} is not writable; choose another with --data-dir`, {
        path,
      }, { cause: error });
    }
    throw error;
  }
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

/** The WebRTC sessions' detector: each frame through the ML service's MediaPipe face detection. */
function mlFaceDetector(ml: MlService): FrameDetector {
  return {
    get available() {
      return ml.available;
    },
    async detect(frame, signal) {
      const result = await ml.detect({ image: frame.data }, "faces", { signal });
      return {
        model: "mediapipe/face_detection_short_range",
        inferenceMs: result.timings.inference_ms,
        detections: result.detections.map((d) => ({
          label: "face",
          score: d.score,
          box: d.box,
          keypoints: d.landmarks.map(({ x, y }) => ({ x, y })),
        })),
      };
    },
  };
}

/** Builds the app for `config.mode`. Reads the token and checks the data dir; starts nothing. */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.log ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const lifecycle = new Lifecycle(log.child("lifecycle"));
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

  await ensureWritableDir(config.dataDir, "data dir");
  const token = config.auth ? await loadOrCreateToken(config.tokenPath) : null;
  const ended = Promise.withResolvers<void>();
  let http: HttpServer | undefined;
  let memory: MemoryComponent | undefined;
  let ml: MlService | undefined;

  if (config.mode === "native") {
    const startCommand = `tabagent serve --data-dir ${config.dataDir}`;
    lifecycle.add(
      new NativeHost({
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
        startCommand,
        log: log.child("native"),
        onEnd: () => ended.resolve(),
      }),
    );
  } else {
    lifecycle.add(new InstanceLock(config.dataDir));
    const routers: OpenAPIHono<HttpEnv>[] = [];
    const httpStopping = new AbortController();
    if (config.mode === "all" || config.mode === "web" || config.mode === "http") {
      // memories are embedded through the orchestrator (created below) with the in-process MiniLM
      const embedder: { orchestrator?: ModelOrchestrator } = {};
      memory = lifecycle.add(
        new MemoryComponent({
          config,
          token,
          log: log.child("memory"),
          embed: (texts, options) => embedWith(embedder.orchestrator, DEFAULT_EMBEDDING_MODEL, texts, options),
        }),
      );
      routers.push(memoryRoutes({ memory: memory.memory, backupDir: `${config.dataDir}/backups` }));
      const models = lifecycle.add(
        new ModelsComponent({
          modelCachePath: config.modelCachePath,
          dataDir: config.dataDir,
          env: Deno.env.toObject(),
          log: log.child("models"),
        }),
      );
      const hardware = await detectHardware();
      const scheduler = new Scheduler();
      const orchestrator = lifecycle.add(
        new ModelOrchestrator({
          models: models.cache,
          hardware,
          scheduler,
          log: log.child("inference"),
          sequencesPerModel: config.parallel,
          promptCacheSequences: config.promptCache,
          llamaAddon: config.llamaAddon,
        }),
      );
      embedder.orchestrator = orchestrator;
      const shutdownSignal = httpStopping.signal;
      ml = config.ml ? lifecycle.add(createMlService(config, token, log, () => http?.url)) : undefined;
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
    }
    if (config.allowAnonymousLocal) {
      log.warn("anonymous local access is on: these Ollama routes answer without the token", {
        routes: OLLAMA_ANONYMOUS_ROUTES,
      });
    }
    if (config.mode === "webrtc" && config.ml) {
      // Tab video needs the vision model even without the rest of the API.
      ml = lifecycle.add(createMlService(config, token, log, () => http?.url));
    }
    if (config.mode === "all" || config.mode === "web" || config.mode === "webrtc") {
      // The vision model frames go to: MediaPipe face detection in the ML service; without it
      // (--no-ml) frames are answered with errors.
      const frameDetector: FrameDetector | undefined = ml ? mlFaceDetector(ml) : undefined;
      const webrtc = lifecycle.add(
        new WebRtcSessions({
          maxSessions: WEBRTC_MAX_SESSIONS,
          idleTimeoutMs: WEBRTC_IDLE_TIMEOUT_MS,
          log: log.child("webrtc"),
          metrics,
          detector: () => frameDetector,
        }),
      );
      routers.push(webrtcRoutes({ sessions: webrtc }));
    }
    const app = createHttpApp({
      config,
      version: VERSION,
      log: log.child("http"),
      lifecycle,
      metrics,
      token,
      routers,
      serveStaticFiles: config.mode === "all" || config.mode === "web",
      nodeModules: new URL("node_modules/", REPO_ROOT),
      anonymousRoutes: config.allowAnonymousLocal ? OLLAMA_ANONYMOUS_ROUTES : [],
    });
    http = lifecycle.add(new HttpServer({ app, host: config.host, port: config.port, log: log.child("http") }));
    http.shutdownSignal.addEventListener("abort", () => httpStopping.abort(http!.shutdownSignal.reason));
    lifecycle.add(
      new ServerRecordComponent({ dataDir: config.dataDir, url: () => http?.url, version: VERSION, mode: config.mode }),
    );
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

export { EXTENSION_ID };

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
