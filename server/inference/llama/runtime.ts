/** The process-wide llama.cpp runtime: one `Llama` with threads and backend from hardware detection. */
import { createRequire } from "node:module";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import type { Logger } from "../../log/mod.ts";
import type { DecodeSteps } from "./decode_loop.ts";

/** How the runtime was set up. */
export interface LlamaRuntimeOptions {
  /** Threads for evaluation. The default oversubscribes small machines badly (~800× slower on 2 cores). */
  threads: number;
  /** Backend from hardware detection; false for CPU. */
  gpu: "cuda" | "vulkan" | "metal" | false;
  /**
   * A node-llama-cpp binding (`llama-addon.node`) built on this machine against a local llama.cpp
   * (`scripts/llama_native.ts`), used for CPU instead of the prebuilt one; when it cannot load,
   * the prebuilt binding serves and a warning says why.
   */
  addon?: string;
  log?: Logger;
}

/** Which binding a runtime loaded: node-llama-cpp's prebuilt one, or a local build and its path. */
export function llamaBinding(llama: Llama): string {
  return localBuilds.get(llama) ?? "prebuilt";
}

const localBuilds = new WeakMap<Llama, string>();

/**
 * `tabagentCopySequencePrefix` of a local build (scripts/llama_native.ts): sequence `to` drops its
 * state and holds `from`'s below position `keep`; false when it could not (then `to` is empty).
 */
export type CopySequencePrefix = (nativeContext: unknown, from: number, to: number, keep: number) => boolean;

const prefixCopiers = new WeakMap<Llama, CopySequencePrefix>();

/** The local build's sequence-prefix copy, or undefined (the prebuilt binding, or an older build). */
export function sequencePrefixCopier(llama: Llama): CopySequencePrefix | undefined {
  return prefixCopiers.get(llama);
}

const decodeLoops = new WeakMap<Llama, DecodeSteps>();

/** The local build's native decode loop (`tabagentDecodeSteps`), or undefined (the prebuilt binding, or an older build). */
export function nativeDecodeSteps(llama: Llama): DecodeSteps | undefined {
  return decodeLoops.get(llama);
}

/** Linux's share of RAM node-llama-cpp keeps free when it plans model memory (its own default). */
const ramPadding = (total: number) => Math.floor(Math.min(total * 0.25, 1024 ** 3));

/**
 * Loads llama.cpp's prebuilt binding for the requested backend, falling back to CPU when the GPU
 * binding cannot load (no driver, wrong CUDA). Never builds from source or downloads.
 *
 * @example
 * ```ts
 * const llama = await createLlamaRuntime({ threads: 1, gpu: false });
 * ```
 */
export async function createLlamaRuntime(options: LlamaRuntimeOptions): Promise<Llama> {
  const { log } = options;
  const logger = (level: LlamaLogLevel, message: string) => {
    const text = message.trim();
    if (!text) return;
    if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) log?.error("llama.cpp", { message: text });
    else if (level === LlamaLogLevel.warn) log?.warn("llama.cpp", { message: text });
    else log?.debug("llama.cpp", { message: text });
  };
  const base = {
    maxThreads: options.threads,
    build: "never" as const,
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.warn,
    logger,
  };
  if (options.gpu) {
    try {
      return await getLlama({ ...base, gpu: options.gpu });
    } catch (error) {
      log?.warn("llama.cpp GPU backend unavailable; using CPU", { gpu: options.gpu, error });
    }
  }
  if (options.addon) {
    try {
      const { llama, copySequencePrefix, decodeSteps } = await loadLocalBinding(options.addon, {
        threads: options.threads,
        logger,
      });
      localBuilds.set(llama, options.addon);
      if (copySequencePrefix) prefixCopiers.set(llama, copySequencePrefix);
      if (decodeSteps) decodeLoops.set(llama, decodeSteps);
      return llama;
    } catch (error) {
      log?.warn("the local llama.cpp build did not load; using the prebuilt one", { addon: options.addon, error });
    }
  }
  return await getLlama({ ...base, gpu: false });
}

/**
 * A `Llama` on a binding at `path`. node-llama-cpp only loads bindings from its own folders, so
 * this uses its internal `Llama._create` (what `getLlama` calls on a local build), pinned with
 * node-llama-cpp's exact version in package.json.
 */
async function loadLocalBinding(
  path: string,
  options: { threads: number; logger: (level: LlamaLogLevel, message: string) => void },
): Promise<{ llama: Llama; copySequencePrefix?: CopySequencePrefix; decodeSteps?: DecodeSteps }> {
  await Deno.stat(path); // a clear NotFound rather than the loader's message
  const internal = new URL("./bindings/Llama.js", import.meta.resolve("node-llama-cpp")).href;
  const { Llama: LlamaClass } = await import(internal) as {
    Llama: { _create(options: Record<string, unknown>): Promise<Llama> };
  };
  const bindings = createRequire(import.meta.url)(path);
  const llama = await LlamaClass._create({
    bindings,
    bindingPath: path,
    buildType: "localBuild",
    buildMetadata: {
      buildOptions: { customCmakeOptions: {}, gpu: false, llamaCpp: { repo: "local", release: "local" } },
    },
    logLevel: LlamaLogLevel.warn,
    logger: options.logger,
    maxThreads: options.threads,
    vramPadding: 0,
    ramPadding,
    skipLlamaInit: false,
    debug: false,
  });
  const copy = bindings.tabagentCopySequencePrefix;
  const steps = bindings.tabagentDecodeSteps;
  return {
    llama,
    copySequencePrefix: typeof copy === "function" ? copy : undefined,
    decodeSteps: typeof steps === "function" ? steps : undefined,
  };
}
