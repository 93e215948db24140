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
import { type Config, EXTENSION_ID, isLoopbackHost } from "./config/mod.ts";
import { TabAgentError } from "./errors/mod.ts";
import { chatRoutes } from "./http/chat.ts";
import { completionRoutes } from "./http/completions.ts";
import { embeddingRoutes } from "./http/embeddings.ts";
import type { HttpEnv } from "./http/mod.ts";
import { systemRoutes } from "./http/system.ts";
import { detectHardware } from "./hardware/mod.ts";
import { ModelOrchestrator, Scheduler } from "./inference/mod.ts";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { modelRoutes } from "./http/models.ts";
import { createHttpApp, HttpServer, memoryRoutes } from "./http/mod.ts";
import { InstanceLock, Lifecycle } from "./lifecycle/mod.ts";
import { createLogger, type Logger } from "./log/mod.ts";
import { type MemoryClient, MemoryComponent, type MemoryEmbedder } from "./memory/mod.ts";
import { DEFAULT_EMBEDDING_MODEL } from "./memory/query/mod.ts";
import { MetricsRegistry } from "./metrics/mod.ts";
import { ModelsComponent } from "./models/mod.ts";
import { NativeHost, type ServerInfo } from "./native/mod.ts";
import { VERSION } from "./version.ts";
import { WEBRTC_IDLE_TIMEOUT_MS, WEBRTC_MAX_SESSIONS } from "./config/mod.ts";
import { webrtcRoutes } from "./http/webrtc.ts";
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

/** Builds the app for `config.mode`. Reads the token and checks the data dir; starts nothing. */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.log ?? createLogger({ level: config.logLevel });
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

  if (config.mode === "native") {
    const serverInfo = async (): Promise<ServerInfo> => ({
      url: `http://${
        isLoopbackHost(config.host) || config.host.includes(":") ? "127.0.0.1" : config.host
      }:${config.port}`,
      token: config.auth ? await loadOrCreateToken(config.tokenPath) : null,
      version: VERSION,
    });
    lifecycle.add(
      new NativeHost({
        input: options.stdin ?? Deno.stdin.readable,
        output: options.stdout ?? Deno.stdout.writable,
        serverInfo,
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
      let embedder: ModelOrchestrator | undefined;
      memory = lifecycle.add(
        new MemoryComponent({
          config,
          token,
          log: log.child("memory"),
          embed: (texts, options) => embedWith(embedder, DEFAULT_EMBEDDING_MODEL, texts, options),
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
      const scheduler = new Scheduler({ memoryLimitBytes: hardware.recommended.memoryBudgetBytes });
      const orchestrator = lifecycle.add(
        new ModelOrchestrator({
          models: models.cache,
          hardware,
          scheduler,
          log: log.child("inference"),
          sequencesPerModel: config.parallel,
          promptCacheSequences: config.promptCache,
        }),
      );
      embedder = orchestrator;
      const shutdownSignal = httpStopping.signal;
      routers.push(
        chatRoutes({ orchestrator, shutdownSignal, memory: memory.memory }),
        completionRoutes({ orchestrator, shutdownSignal }),
        embeddingRoutes({ orchestrator }),
        systemRoutes({ orchestrator, hardware }),
      );
      routers.push(
        modelRoutes({
          models,
          shutdownSignal,
          isLoaded: (id) => orchestrator.isLoaded(id),
          unload: (id) => orchestrator.unloadForDelete(id),
        }),
      );
    }
    if (config.mode === "all" || config.mode === "web" || config.mode === "webrtc") {
      // The vision model frames go to; none until the ML service is wired in (frames then get errors).
      const frameDetector: FrameDetector | undefined = undefined;
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
    });
    http = lifecycle.add(new HttpServer({ app, host: config.host, port: config.port, log: log.child("http") }));
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
