/** Text embeddings from an ONNX encoder (input_ids/attention_mask → last_hidden_state) and its tokenizer. */
import { TabAgentError } from "../../errors/mod.ts";
import type { Logger } from "../../log/mod.ts";
import type { HfTokenizer } from "../tokenizers/mod.ts";
import { createSession, type ModelIo, ort } from "./session.ts";

/** Longest input, in tokens, one text may have; longer ones are truncated like sentence-transformers. */
export const MAX_EMBEDDING_TOKENS = 512;

/** Texts per ONNX run: sorted by length, so each run pads little. */
export const EMBEDDING_SUB_BATCH = 32;

/** Vectors and the tokens they cost. */
export interface EmbeddingResult {
  vectors: Float32Array[];
  promptTokens: number;
}

/** An ONNX embedding model with its tokenizer. */
export class OnnxEmbeddingModel {
  readonly #session: ort.InferenceSession;
  readonly tokenizer: HfTokenizer;
  readonly provider: string;
  readonly io: ModelIo;
  readonly #output: string;
  readonly #inputs: Set<string>;
  /** Tokens per text the model reads; longer texts are truncated (sentence-transformers' max_seq_length). */
  readonly maxTokens: number;

  private constructor(
    session: ort.InferenceSession,
    tokenizer: HfTokenizer,
    provider: string,
    io: ModelIo,
    maxTokens = MAX_EMBEDDING_TOKENS,
  ) {
    this.maxTokens = Math.min(maxTokens, MAX_EMBEDDING_TOKENS);
    this.#session = session;
    this.tokenizer = tokenizer;
    this.provider = provider;
    this.io = io;
    const names = io.outputs.map((o) => o.name);
    this.#output = ["sentence_embedding", "pooler_output", "last_hidden_state"].find((n) => names.includes(n)) ??
      names[0];
    const inputs = io.inputs.map((i) => i.name);
    this.#inputs = new Set(inputs);
    if (!inputs.includes("input_ids")) {
      throw new TabAgentError("bad_request", "This ONNX model has no input_ids input; it is not a text encoder", {
        inputs,
      });
    }
  }

  /** Loads `path` with the first provider that accepts it. */
  static async load(
    path: string,
    tokenizer: HfTokenizer,
    options: { providers: string[]; threads: number; log?: Logger; maxTokens?: number },
  ): Promise<OnnxEmbeddingModel> {
    const { session, provider, io } = await createSession(path, options);
    return new OnnxEmbeddingModel(session, tokenizer, provider, io, options.maxTokens);
  }

  /**
   * Embeds each text (mean-pooled over real tokens, L2-normalised). Texts are sorted by length and
   * run in sub-batches of {@link EMBEDDING_SUB_BATCH}, each padded only to its own longest text (as
   * sentence-transformers does): padding tokens cost as much compute as real ones.
   */
  async embed(texts: string[], signal?: AbortSignal): Promise<EmbeddingResult> {
    const limit = this.maxTokens;
    const encoded = texts.map((text) => {
      const { ids } = this.tokenizer.encode(text);
      if (ids.length <= limit) return ids;
      // keep the final special token ([SEP]) like a truncating tokenizer would
      return [...ids.slice(0, limit - 1), ids[ids.length - 1]];
    });
    const order = encoded.map((_, i) => i).sort((a, b) => encoded[a].length - encoded[b].length);
    const vectors = new Array<Float32Array>(texts.length);
    for (let start = 0; start < order.length; start += EMBEDDING_SUB_BATCH) {
      const rows = order.slice(start, start + EMBEDDING_SUB_BATCH);
      signal?.throwIfAborted();
      const pooled = await this.#run(rows.map((i) => encoded[i]));
      rows.forEach((i, r) => (vectors[i] = pooled[r]));
    }
    signal?.throwIfAborted();
    return { vectors, promptTokens: encoded.reduce((n, ids) => n + ids.length, 0) };
  }

  async #run(batch: number[][]): Promise<Float32Array[]> {
    const width = Math.max(1, ...batch.map((ids) => ids.length));
    const size = batch.length * width;
    const ids = new BigInt64Array(size);
    const mask = new BigInt64Array(size);
    batch.forEach((row, r) => {
      const offset = r * width;
      for (let t = 0; t < row.length; t++) {
        ids[offset + t] = BigInt(row[t]);
        mask[offset + t] = 1n;
      }
    });
    const dims = [batch.length, width];
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor("int64", ids, dims) };
    if (this.#inputs.has("attention_mask")) feeds.attention_mask = new ort.Tensor("int64", mask, dims);
    if (this.#inputs.has("token_type_ids")) {
      feeds.token_type_ids = new ort.Tensor("int64", new BigInt64Array(size), dims);
    }
    const outputs = await this.#session.run(feeds, [this.#output]);
    const output = outputs[this.#output];
    try {
      const data = output.data as Float32Array;
      if (output.dims.length === 2) {
        const dim = output.dims[1];
        return batch.map((_, r) => normalize(data.slice(r * dim, (r + 1) * dim)));
      }
      const [, seq, dim] = output.dims;
      return batch.map((row, r) => {
        const sum = new Float32Array(dim);
        for (let t = 0; t < row.length; t++) {
          const offset = (r * seq + t) * dim;
          for (let d = 0; d < dim; d++) sum[d] += data[offset + d];
        }
        return normalize(sum);
      });
    } finally {
      output.dispose?.();
    }
  }

  /** Frees the session. */
  async close(): Promise<void> {
    await this.#session.release();
  }
}

/** Scales `vector` in place to unit length (mean pooling's division by the count cancels out here). */
function normalize(vector: Float32Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < vector.length; i++) norm += vector[i] * vector[i];
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < vector.length; i++) vector[i] /= norm;
  return vector;
}
