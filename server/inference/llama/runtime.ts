/** The process-wide llama.cpp runtime: one `Llama` with threads and backend from hardware detection. */
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import type { Logger } from "../../log/mod.ts";

/** How the runtime was set up. */
export interface LlamaRuntimeOptions {
  /** Threads for evaluation. The default oversubscribes small machines badly (~800× slower on 2 cores). */
  threads: number;
  /** Backend from hardware detection; false for CPU. */
  gpu: "cuda" | "vulkan" | "metal" | false;
  log?: Logger;
}

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
  const base = {
    maxThreads: options.threads,
    build: "never" as const,
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.warn,
    logger: (level: LlamaLogLevel, message: string) => {
      const text = message.trim();
      if (!text) return;
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) log?.error("llama.cpp", { message: text });
      else if (level === LlamaLogLevel.warn) log?.warn("llama.cpp", { message: text });
      else log?.debug("llama.cpp", { message: text });
    },
  };
  if (options.gpu) {
    try {
      return await getLlama({ ...base, gpu: options.gpu });
    } catch (error) {
      log?.warn("llama.cpp GPU backend unavailable; using CPU", { gpu: options.gpu, error });
    }
  }
  return await getLlama({ ...base, gpu: false });
}
