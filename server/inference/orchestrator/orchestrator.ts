/**
 * The model orchestrator: asks the model cache where a model's weights are, loads them (load → ready → unload), keeps them
 * for `keep_alive`, evicts the least recently used when the memory budget is short, and runs every
 * model call through the scheduler.
 */
import { GgufInsights, type Llama, readGgufFileInfo } from "node-llama-cpp";
import { TabAgentError } from "../../errors/mod.ts";
import type { HardwareInfo } from "../../hardware/mod.ts";
import type { Component, ComponentHealth } from "../../lifecycle/mod.ts";
import type { Logger } from "../../log/mod.ts";
import {
  chooseLlamaBinding,
  createLlamaRuntime,
  DecodePlacement,
  DecodeThreadTuner,
  DEFAULT_CONTEXT_SIZE,
  llamaBinding,
  LlamaTextModel,
  LlamaThreadGovernor,
  type LoadProbe,
  type ThreadPolicy,
} from "../llama/mod.ts";
import {
  chooseProviders,
  compiledBackends,
  installedProviderLibraries,
  OnnxEmbeddingModel,
  type ProviderStatus,
  providerStatuses,
} from "../onnx/mod.ts";
import type { JobLease, Priority, Scheduler, SchedulerStats } from "../scheduler/mod.ts";
import { loadTokenizer } from "../tokenizers/mod.ts";
import { DEFAULT_KEEP_ALIVE_MS } from "./keep_alive.ts";
import type { ModelFormat, ModelLocation } from "../../models/mod.ts";

/** Parallel sequences per GGUF model: concurrent chats on one model, decoded together in one batch. */
export const DEFAULT_SEQUENCES_PER_MODEL = 4;
/**
 * Extra sequences per GGUF model that keep idle conversations' KV state (the prompt cache), so a
 * conversation's next turn processes only its new tokens. Fewer when the memory budget is short.
 */
export const DEFAULT_PROMPT_CACHE_SEQUENCES = 4;
/** ONNX Runtime needs about this many times the file size while a session is loaded. */
export const ONNX_MEMORY_FACTOR = 2;

/** A model's lifecycle state. */
export type ModelState = "loading" | "ready" | "unloading";

/** A loaded (or loading) model. */
interface Entry {
  location: ModelLocation;
  state: ModelState;
  loaded?: Promise<void>;
  llama?: LlamaTextModel;
  onnx?: OnnxEmbeddingModel;
  /** Learns the decode steps' thread count for this model (its size decides what is faster). */
  decodeThreads?: DecodeThreadTuner;
  memoryBytes: number;
  lastUsed: number;
  active: number;
  keepAliveMs: number;
  timer?: ReturnType<typeof setTimeout>;
  expiresAt?: number;
}

/** A model in use by one request; release it when done (keep_alive counts from then). */
export interface ModelHandle {
  readonly id: string;
  readonly format: ModelFormat;
  /** Set for GGUF models. */
  readonly llama?: LlamaTextModel;
  /** Set for ONNX embedding models. */
  readonly onnx?: OnnxEmbeddingModel;
  /** Runs a model call through the scheduler (priority, concurrency, deadline, cancellation). */
  run<T>(options: RunOptions, task: (lease: JobLease) => Promise<T>): Promise<T>;
  release(): void;
}

/** Scheduling options for one call. */
export interface RunOptions {
  priority?: Priority;
  signal?: AbortSignal;
  deadline?: number;
}

/** What `/v1/system` and `/v1/health` show about one model. */
export interface LoadedModelStatus {
  id: string;
  format: ModelFormat;
  state: ModelState;
  memory_bytes: number;
  active_requests: number;
  sequences?: { total: number; busy: number };
  /** GGUF generations so far: total, aborted (client gone, shutdown), tokens generated. */
  generations?: { total: number; aborted: number; completionTokens: number };
  /** GGUF prompt cache: sequences kept for idle conversations, how many hold one, hits, reused tokens, evictions. */
  prompt_cache?: {
    sequences: number;
    cached: number;
    hits: number;
    misses: number;
    reused_tokens: number;
    evictions: number;
    /** Requests that started from a copy of another conversation's shared prefix (a system prompt). */
    prefix_copies: number;
  };
  /**
   * The local build's native decode loop (plain chat replies): calls into the binding and the
   * sampling steps they ran; absent where replies go through node-llama-cpp's generator.
   */
  native_decode?: { runs: number; steps: number };
  context_size?: number;
  provider?: string;
  expires_at: string | null;
  last_used: string;
}

/** The orchestrator's whole state. */
export interface InferenceStatus {
  backend: {
    llama: string;
    threads: number;
    threads_reason: string;
    /** `flag` when `--llama-threads` set the count, `policy` when it follows cores and load. */
    threads_source: "flag" | "policy";
    onnx_providers: string[];
  };
  memory_budget_bytes: number;
  memory_in_use_bytes: number;
  models: LoadedModelStatus[];
  scheduler: SchedulerStats;
}

/** Where the orchestrator finds a model's weights: the models module's `ModelCache`. */
export interface ModelLocator {
  /** The weights of `id`; throws `not_found` when there are none. */
  locate(id: string): Promise<ModelLocation>;
}

/** What the orchestrator needs. */
export interface OrchestratorOptions {
  models: ModelLocator;
  hardware: HardwareInfo;
  scheduler: Scheduler;
  log: Logger;
  /** Overrides the budget from hardware detection. */
  memoryBudgetBytes?: number;
  defaultKeepAliveMs?: number;
  sequencesPerModel?: number;
  /** Sequences per GGUF model kept for idle conversations (prompt cache), within the memory budget. */
  promptCacheSequences?: number;
  contextSize?: number;
  /**
   * `--llama-addon`: `prebuilt`, or a locally built node-llama-cpp binding to use instead of the prebuilt one
   * (which it falls back to); unset, the binding setup built when there is a current one.
   */
  llamaAddon?: string;
  /** llama.cpp threads, fixed (`--llama-threads`); without it the thread policy decides at each request. */
  llamaThreads?: number;
  /** Where the thread policy reads the machine's load (this machine when absent; tests set the load). */
  loadProbe?: LoadProbe;
}

/**
 * Loads, keeps and evicts models; a lifecycle component.
 *
 * @example
 * ```ts
 * const handle = await orchestrator.acquire("org/model");
 * try {
 *   await handle.run({ signal }, (lease) => handle.llama!.generateChat(prepared, { signal: lease.signal }));
 * } finally {
 *   handle.release();
 * }
 * ```
 */
export class ModelOrchestrator implements Component {
  readonly name = "inference";
  readonly critical = false;
  readonly #options: OrchestratorOptions;
  readonly #entries = new Map<string, Entry>();
  #llama?: Llama;
  /** The loaded binding has a persistent thread pool: lone decode steps run on the policy's count. */
  #threadPool = false;
  #providers: ProviderStatus[] = [];
  #threads: ThreadPolicy = { threads: 1, reason: "not started", source: "policy" };
  #governor?: LlamaThreadGovernor;
  /** Keeps the event loop and a lone compute thread on one core while a reply generates. */
  #placement?: DecodePlacement;
  #stopped = false;

  constructor(options: OrchestratorOptions) {
    this.#options = options;
  }

  /** The hardware the orchestrator plans with. */
  get hardware(): HardwareInfo {
    return this.#options.hardware;
  }

  get #budget(): number {
    return this.#options.memoryBudgetBytes ?? this.#options.hardware.recommended.memoryBudgetBytes;
  }

  async start(): Promise<void> {
    const { hardware, log } = this.#options;
    this.#governor = new LlamaThreadGovernor(hardware.cpu, {
      fixed: this.#options.llamaThreads,
      probe: this.#options.loadProbe,
    });
    this.#threads = this.#governor.current;
    const binding = await chooseLlamaBinding(this.#options.llamaAddon);
    this.#llama = await createLlamaRuntime({
      threads: this.#threads.threads,
      gpu: hardware.recommended.llamaGpu,
      addon: binding.addon,
      log: log.child("llama"),
    });
    this.#threadPool = binding.threadPool && llamaBinding(this.#llama) !== "prebuilt";
    const llama = this.#llama;
    this.#placement = new DecodePlacement(() => llama.maxThreads);
    this.#providers = providerStatuses(compiledBackends(), hardware, await installedProviderLibraries());
    log.info("inference ready", {
      llama_backend: this.#llama.gpu || "cpu",
      llama_binding: llamaBinding(this.#llama),
      llama_binding_reason: binding.reason,
      threads: this.#threads.threads,
      threads_reason: this.#threads.reason,
      memory_budget_bytes: this.#budget,
      onnx_providers: chooseProviders(this.#providers),
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#options.scheduler.close();
    await Promise.all([...this.#entries.keys()].map((id) => this.unload(id)));
    await this.#llama?.dispose();
    this.#placement?.[Symbol.dispose]();
  }

  health(): ComponentHealth {
    const models = [...this.#entries.values()];
    const threads = `llama.cpp ${this.#threads.threads} thread(s), ${
      this.#threads.source === "flag" ? "set by flag" : "by policy"
    }`;
    if (!models.length) return { state: "ready", detail: `no model loaded; ${threads}` };
    const loading = models.some((m) => m.state === "loading");
    return {
      state: "ready",
      detail: models.map((m) => `${m.location.id} (${m.state})${decodeNote(m, this.#threads.threads)}`).join(", ") +
        (loading ? "; loading" : "") + `; ${threads}`,
    };
  }

  /**
   * Decides the thread count again from the machine's load and applies it to llama.cpp's cap, which
   * every context honours from its next batch (contexts are created with the governor's maximum).
   */
  #retuneThreads(): void {
    if (!this.#governor || !this.#llama) return;
    const before = this.#threads.threads;
    this.#threads = this.#governor.decide();
    if (this.#threads.threads === before) return;
    this.#llama.maxThreads = this.#threads.threads;
    // debug: while other work comes and goes this can change every quarter second
    this.#options.log.debug("llama.cpp threads changed", {
      threads: this.#threads.threads,
      was: before,
      threads_reason: this.#threads.reason,
    });
  }

  /**
   * Unloads `id` so its files can be deleted; refuses with `conflict` while a request uses it. A
   * model that is not loaded is fine.
   */
  async unloadForDelete(id: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (!entry) return;
    if (entry.active > 0) {
      throw new TabAgentError("conflict", `The model '${id}' is answering a request; delete it when that is done`, {
        model: id,
      });
    }
    await this.unload(id);
  }

  /** True when `id` is loaded and ready: what `/v1/models` shows as `loaded`. */
  isLoaded = (id: string): boolean => this.#entries.get(id)?.state === "ready";

  /** The ONNX execution providers and whether each is usable here. */
  get providers(): ProviderStatus[] {
    return this.#providers;
  }

  /**
   * Loads `id` when needed and holds it until `release()`. `keepAliveMs` (Ollama's keep_alive)
   * applies from the release: 0 unloads at once, Infinity keeps it until shutdown.
   */
  async acquire(id: string, options: { keepAliveMs?: number } = {}): Promise<ModelHandle> {
    if (this.#stopped || !this.#llama) throw new TabAgentError("unavailable", "Inference is not running");
    this.#retuneThreads();
    let entry = this.#entries.get(id);
    if (!entry || entry.state === "unloading") {
      const location = await this.#options.models.locate(id);
      entry = this.#entries.get(id);
      if (!entry || entry.state === "unloading") entry = this.#startLoad(location);
    }
    entry.active++;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.expiresAt = undefined;
    if (options.keepAliveMs !== undefined) entry.keepAliveMs = options.keepAliveMs;
    try {
      await entry.loaded;
    } catch (error) {
      entry.active--;
      throw error;
    }
    entry.lastUsed = Date.now();
    const current = entry;
    let released = false;
    return {
      id,
      format: current.location.format,
      llama: current.llama,
      onnx: current.onnx,
      run: (runOptions, task) => {
        current.lastUsed = Date.now();
        return this.#options.scheduler.run({ model: id, ...runOptions }, task);
      },
      release: () => {
        if (released) return;
        released = true;
        this.#release(current);
      },
    };
  }

  #release(entry: Entry): void {
    entry.active--;
    entry.lastUsed = Date.now();
    if (entry.active > 0 || entry.state !== "ready") return;
    const keep = entry.keepAliveMs;
    if (keep === Infinity) return;
    if (keep <= 0) {
      this.unload(entry.location.id).catch((error) => this.#options.log.error("unload failed", { error }));
      return;
    }
    entry.expiresAt = Date.now() + keep;
    entry.timer = setTimeout(() => {
      if (entry.active === 0) {
        this.unload(entry.location.id).catch((error) => this.#options.log.error("unload failed", { error }));
      }
    }, Math.min(keep, 2 ** 31 - 1));
  }

  async #estimate(location: ModelLocation, sequences = this.#sequences): Promise<number> {
    if (location.format === "onnx") return location.sizeBytes * ONNX_MEMORY_FACTOR;
    try {
      const info = await readGgufFileInfo(location.file);
      const insights = await GgufInsights.from(info, this.#llama);
      const gpuLayers = this.#llama?.gpu ? insights.totalLayers : 0;
      const model = await insights.estimateModelResourceRequirementsV2({ gpuLayers });
      const context = await insights.estimateContextResourceRequirementsV2({
        contextSize: Math.min(this.#options.contextSize ?? DEFAULT_CONTEXT_SIZE, insights.trainContextSize ?? Infinity),
        modelGpuLayers: gpuLayers,
        sequences,
      });
      return model.cpuRam + model.gpuVram + context.cpuRam + context.gpuVram;
    } catch (error) {
      throw new TabAgentError("storage_corrupt", `${location.file} is not a readable GGUF file`, {
        model: location.id,
      }, { cause: error });
    }
  }

  get #sequences(): number {
    return this.#options.sequencesPerModel ?? DEFAULT_SEQUENCES_PER_MODEL;
  }

  #memoryInUse(): number {
    let sum = 0;
    for (const entry of this.#entries.values()) sum += entry.memoryBytes;
    return sum;
  }

  /** Unloads idle models, least recently used first, until `needed` more bytes fit. */
  async #makeRoom(needed: number, loading: string): Promise<void> {
    const budget = this.#budget;
    if (needed > budget) {
      throw new TabAgentError(
        "insufficient_storage",
        `The model needs ${needed} bytes; the memory budget is ${budget}`,
        {
          model: loading,
          needed_bytes: needed,
          budget_bytes: budget,
        },
      );
    }
    while (this.#memoryInUse() + needed > budget) {
      const idle = [...this.#entries.values()]
        .filter((e) => e.state === "ready" && e.active === 0 && e.location.id !== loading)
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!idle) {
        throw new TabAgentError("unavailable", "Every loaded model is busy and there is no memory for another; retry", {
          model: loading,
        });
      }
      this.#options.log.info("evicting model", { model: idle.location.id, reason: "memory budget" });
      await this.unload(idle.location.id);
    }
  }

  #startLoad(location: ModelLocation): Entry {
    const entry: Entry = {
      location,
      state: "loading",
      memoryBytes: 0,
      lastUsed: Date.now(),
      active: 0,
      keepAliveMs: this.#options.defaultKeepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
    };
    this.#entries.set(location.id, entry);
    entry.loaded = (async () => {
      const began = performance.now();
      const { hardware, log, scheduler } = this.#options;
      let promptCache = this.#options.promptCacheSequences ?? DEFAULT_PROMPT_CACHE_SEQUENCES;
      let needed = await this.#estimate(location, this.#sequences + promptCache);
      // The prompt cache is a nicety: it shrinks to fit the budget before anything is refused.
      while (promptCache > 0 && needed > this.#budget) {
        promptCache = Math.floor(promptCache / 2);
        needed = await this.#estimate(location, this.#sequences + promptCache);
      }
      await this.#makeRoom(needed, location.id);
      entry.memoryBytes = needed;
      if (location.format === "gguf") {
        // A context's thread ceiling is clamped to llama.cpp's cap when it is created: create it
        // under the governor's maximum, then put back the current decision.
        this.#llama!.maxThreads = this.#governor!.max;
        const tuner = entry.decodeThreads = new DecodeThreadTuner();
        entry.llama = await LlamaTextModel.load(this.#llama!, location.file, {
          sequences: this.#sequences,
          promptCacheSequences: promptCache,
          threads: this.#governor!.max,
          contextSize: this.#options.contextSize,
          placement: this.#placement,
          // A count set by flag holds for every batch (llama.cpp's cap, set below): nothing to choose per
          // batch. Otherwise the policy is looked at again while a reply is generated (other work may
          // start or stop meanwhile) and decode steps run on what they measured best under it.
          // With the local build's thread pool a lone decode step is not tuned (see BindingChoice).
          batchThreads: this.#threads.source === "flag" ? undefined : (batch) => {
            this.#retuneThreads(); // the governor decides again at most every quarter second
            return this.#threadPool ? this.#threads.threads : tuner.threadsFor(batch, this.#threads.threads);
          },
        }).finally(() => this.#llama!.maxThreads = this.#threads.threads);
        scheduler.setConcurrency(location.id, entry.llama.sequences);
        const hooks = entry.llama.batchingHooks;
        if (!hooks.lockstep || !hooks.orderedOutputs) {
          log.warn("node-llama-cpp's internals differ from the pinned version's: batching hooks missing", {
            model: location.id,
            ...hooks,
            effect: hooks.orderedOutputs ? "concurrent replies decode unsynchronised" : "one reply at a time",
          });
        }
      } else {
        const tokenizer = await loadTokenizer(location.dir);
        entry.onnx = await OnnxEmbeddingModel.load(location.file, tokenizer, {
          providers: chooseProviders(this.#providers),
          threads: hardware.recommended.threads,
          log,
          maxTokens: await sentenceTransformersMaxTokens(location.dir),
        });
        scheduler.setConcurrency(location.id, 1);
      }
      entry.state = "ready";
      log.info("model loaded", {
        model: location.id,
        format: location.format,
        memory_bytes: needed,
        ms: Math.round(performance.now() - began),
      });
    })();
    entry.loaded.catch((error) => {
      if (this.#entries.get(location.id) === entry) this.#entries.delete(location.id);
      this.#options.log.warn("model failed to load", { model: location.id, error });
    });
    return entry;
  }

  /** Unloads `id` now (waits for a load in progress); running calls keep their own references. */
  async unload(id: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (!entry || entry.state === "unloading") return;
    clearTimeout(entry.timer);
    // A load that failed has nothing to unload; its error already reached whoever asked for it.
    await entry.loaded?.catch(() => {});
    entry.state = "unloading";
    this.#options.scheduler.clearConcurrency(id);
    try {
      await entry.llama?.close();
      await entry.onnx?.close();
    } finally {
      if (this.#entries.get(id) === entry) this.#entries.delete(id);
      this.#options.log.info("model unloaded", { model: id });
    }
  }

  /** Everything `/v1/system` shows about inference. */
  status(): InferenceStatus {
    return {
      backend: {
        llama: this.#llama ? (this.#llama.gpu || "cpu") : "not started",
        threads: this.#threads.threads,
        threads_reason: this.#threads.reason,
        threads_source: this.#threads.source,
        onnx_providers: chooseProviders(this.#providers),
      },
      memory_budget_bytes: this.#budget,
      memory_in_use_bytes: this.#memoryInUse(),
      models: [...this.#entries.values()].map((e) => ({
        id: e.location.id,
        format: e.location.format,
        state: e.state,
        memory_bytes: e.memoryBytes,
        active_requests: e.active,
        ...(e.llama
          ? {
            sequences: { total: e.llama.sequences, busy: e.llama.busySequences },
            context_size: e.llama.contextSize,
            generations: e.llama.stats,
            prompt_cache: promptCacheStatus(e.llama),
            ...(e.llama.nativeDecode ? { native_decode: e.llama.nativeDecode } : {}),
          }
          : {}),
        ...(e.onnx ? { provider: e.onnx.provider } : {}),
        expires_at: e.expiresAt ? new Date(e.expiresAt).toISOString() : null,
        last_used: new Date(e.lastUsed).toISOString(),
      })),
      scheduler: this.#options.scheduler.stats(),
    };
  }
}

function promptCacheStatus(model: LlamaTextModel): LoadedModelStatus["prompt_cache"] {
  const cache = model.promptCache;
  return {
    sequences: cache.sequences,
    cached: cache.cached,
    hits: cache.hits,
    misses: cache.misses,
    reused_tokens: cache.reusedTokens,
    evictions: cache.evictions,
    prefix_copies: cache.prefixCopies,
  };
}

/** `max_seq_length` from a sentence-transformers folder's `sentence_bert_config.json`, if it has one. */
async function sentenceTransformersMaxTokens(dir: string): Promise<number | undefined> {
  try {
    const config = JSON.parse(await Deno.readTextFile(`${dir}/sentence_bert_config.json`));
    return Number.isInteger(config.max_seq_length) && config.max_seq_length > 0 ? config.max_seq_length : undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/** " decoding on N thread(s), measured" once a model's decode steps have been timed at both counts. */
function decodeNote(entry: Entry, cap: number): string {
  const chosen = entry.decodeThreads?.chosen(cap);
  return chosen === undefined ? "" : ` decoding on ${chosen} thread(s), measured`;
}
