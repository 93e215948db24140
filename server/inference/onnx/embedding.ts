/** Text embeddings from an ONNX encoder (input_ids/attention_mask → last_hidden_state) and its tokenizer. */
import { TabAgentError } from "../../errors/mod.ts";
import type { Logger } from "../../log/mod.ts";
import type { HfTokenizer } from "../tokenizers/mod.ts";
import { createSession, int64Tensor, type ModelIo, type ort } from "./session.ts";

/** Longest input, in tokens, one text may have; longer ones are truncated like sentence-transformers. */
export const MAX_EMBEDDING_TOKENS = 512;

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

  private constructor(session: ort.InferenceSession, tokenizer: HfTokenizer, provider: string, io: ModelIo) {
    this.#session = session;
    this.tokenizer = tokenizer;
    this.provider = provider;
    this.io = io;
    const names = io.outputs.map((o) => o.name);
    this.#output = ["sentence_embedding", "pooler_output", "last_hidden_state"].find((n) => names.includes(n)) ??
      names[0];
    const inputs = io.inputs.map((i) => i.name);
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
    options: { providers: string[]; threads: number; log?: Logger },
  ): Promise<OnnxEmbeddingModel> {
    const { session, provider, io } = await createSession(path, options);
    return new OnnxEmbeddingModel(session, tokenizer, provider, io);
  }

  /** Embeds each text (mean-pooled over real tokens, L2-normalised), in one batch. */
  async embed(texts: string[], signal?: AbortSignal): Promise<EmbeddingResult> {
    const encoded = texts.map((text) => {
      const { ids, attentionMask } = this.tokenizer.encode(text);
      return { ids: ids.slice(0, MAX_EMBEDDING_TOKENS), mask: attentionMask.slice(0, MAX_EMBEDDING_TOKENS) };
    });
    const width = Math.max(1, ...encoded.map((e) => e.ids.length));
    const pad = (row: number[]) => [...row, ...new Array(width - row.length).fill(0)];
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64Tensor(encoded.map((e) => pad(e.ids))),
    };
    const inputNames = this.io.inputs.map((i) => i.name);
    if (inputNames.includes("attention_mask")) feeds.attention_mask = int64Tensor(encoded.map((e) => pad(e.mask)));
    if (inputNames.includes("token_type_ids")) feeds.token_type_ids = int64Tensor(encoded.map(() => pad([]).fill(0)));
    signal?.throwIfAborted();
    const outputs = await this.#session.run(feeds);
    signal?.throwIfAborted();
    const output = outputs[this.#output];
    const data = output.data as Float32Array;
    const dims = output.dims;
    const vectors = encoded.map((e, row) => {
      if (dims.length === 2) return normalize(data.slice(row * dims[1], (row + 1) * dims[1]));
      const [, seq, dim] = dims;
      const sum = new Float32Array(dim);
      let count = 0;
      for (let t = 0; t < seq; t++) {
        if (!e.mask[t]) continue;
        count++;
        const offset = (row * seq + t) * dim;
        for (let d = 0; d < dim; d++) sum[d] += data[offset + d];
      }
      for (let d = 0; d < dim; d++) sum[d] /= Math.max(1, count);
      return normalize(sum);
    });
    return { vectors, promptTokens: encoded.reduce((n, e) => n + e.mask.filter(Boolean).length, 0) };
  }

  /** Frees the session. */
  async close(): Promise<void> {
    await this.#session.release();
  }
}

function normalize(vector: Float32Array): Float32Array {
  let norm = 0;
  for (const v of vector) norm += v * v;
  norm = Math.sqrt(norm) || 1;
  return vector.map((v) => v / norm);
}
