/**
 * The real all-MiniLM-L6-v2 (the ONNX export that setup places under `tests/.fixtures/`), loaded as
 * the memory's embedder for tests and their child processes: CPU, one thread, 256 tokens.
 */
import { loadTokenizer } from "../../inference/tokenizers/mod.ts";
import { OnnxEmbeddingModel } from "../../inference/onnx/embedding.ts";
import type { MemoryEmbedder } from "../local.ts";

/** Where setup places all-MiniLM-L6-v2. */
export const MINILM =
  new URL("../../../tests/.fixtures/models/sentence-transformers--all-MiniLM-L6-v2", import.meta.url)
    .pathname;

/**
 * Loads MiniLM from `dir` (by default {@link MINILM}); `close()` frees the session.
 *
 * @example
 * ```ts
 * const minilm = await loadMiniLm();
 * const memory = await openLocalMemory({ dir, searchWorkers: 0, embed: minilm.embed });
 * ```
 */
export async function loadMiniLm(dir: string = MINILM): Promise<{ embed: MemoryEmbedder; close: () => Promise<void> }> {
  const model = await OnnxEmbeddingModel.load(`${dir}/onnx/model.onnx`, await loadTokenizer(dir), {
    providers: ["cpu"],
    threads: 1,
    maxTokens: 256,
  });
  return { embed: async (texts) => (await model.embed(texts)).vectors, close: () => model.close() };
}
