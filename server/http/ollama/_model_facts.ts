/**
 * What `/api/tags`, `/api/show` and `/api/ps` say about a model: Ollama's `details`, `model_info`
 * (the GGUF header's metadata), the chat template, the license and a digest. Read from the file's
 * header once per file version and kept.
 */
import { readGgufFileInfo } from "node-llama-cpp";
import { createHash } from "node:crypto";
import type { ModelLocation } from "../../models/mod.ts";
import { quantOfFile } from "./_names.ts";
import type { OllamaDetails } from "./_schemas.ts";

/** What we know about one model file. */
export interface ModelFacts {
  details: OllamaDetails;
  /** GGUF metadata flattened to dotted keys, token tables emptied (as Ollama sends them unless `verbose`). */
  modelInfo: Record<string, unknown>;
  template: string;
  license?: string;
  /** The vocabulary has fill-in-the-middle tokens (Ollama's `insert` capability). */
  infill: boolean;
  /** Tokens the model was trained for (`<arch>.context_length`). */
  trainContextLength?: number;
  /** 64 hex digits identifying this file version (Ollama's `digest`). */
  digest: string;
  modifiedAt: Date;
}

// llama.cpp's `general.file_type` values (enum llama_ftype), for files whose name says no quantisation.
const FILE_TYPES: Record<number, string> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  7: "Q8_0",
  8: "Q5_0",
  9: "Q5_1",
  10: "Q2_K",
  11: "Q3_K_S",
  12: "Q3_K_M",
  13: "Q3_K_L",
  14: "Q4_K_S",
  15: "Q4_K_M",
  16: "Q5_K_S",
  17: "Q5_K_M",
  18: "Q6_K",
  32: "BF16",
};

function flatten(value: Record<string, unknown>, verbose: boolean, prefix = "", out: Record<string, unknown> = {}) {
  for (const [key, inner] of Object.entries(value)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (inner && typeof inner === "object" && !Array.isArray(inner) && !ArrayBuffer.isView(inner)) {
      flatten(inner as Record<string, unknown>, verbose, name, out);
    } else if (Array.isArray(inner) || ArrayBuffer.isView(inner)) {
      // Ollama sends the token tables empty unless asked for them (`verbose`): they are megabytes.
      const items = Array.from(inner as ArrayLike<unknown>);
      out[name] = verbose || items.length <= 64 ? items.map((v) => typeof v === "bigint" ? Number(v) : v) : [];
    } else out[name] = typeof inner === "bigint" ? Number(inner) : inner;
  }
  return out;
}

function parameterSize(count: unknown, label: unknown): string {
  if (typeof label === "string" && label) return label;
  if (typeof count !== "number" || !count) return "";
  if (count >= 1e9) return `${(count / 1e9).toFixed(1)}B`;
  return `${Math.round(count / 1e6)}M`;
}

function digestOf(location: ModelLocation, info: Deno.FileInfo): string {
  // Hashing gigabytes on every listing is out of the question: a stable identity of this file
  // version (path, size, modification time) stands in for the content hash.
  const identity = `${location.id}\0${location.file}\0${info.size}\0${info.mtime?.getTime() ?? 0}`;
  return createHash("sha256").update(identity).digest("hex");
}

async function readMetadata(file: string): Promise<Record<string, unknown>> {
  const info = await readGgufFileInfo(file, { readTensorInfo: false });
  return info.metadata as unknown as Record<string, unknown>;
}

/** `model_info` with every array in full (`/api/show` with `verbose`): read again, never kept. */
export async function verboseModelInfo(location: ModelLocation): Promise<Record<string, unknown>> {
  if (location.format !== "gguf") return (await onnxFacts(location)).modelInfo;
  const info = flatten(await readMetadata(location.file), true);
  delete info["tokenizer.chat_template"];
  return info;
}

async function ggufFacts(location: ModelLocation): Promise<Omit<ModelFacts, "digest" | "modifiedAt">> {
  const metadata = await readMetadata(location.file);
  const general = (metadata.general ?? {}) as Record<string, unknown>;
  const tokenizer = (metadata.tokenizer ?? {}) as Record<string, unknown>;
  const ggml = (tokenizer.ggml ?? {}) as Record<string, unknown>;
  const architecture = typeof general.architecture === "string" ? general.architecture : "";
  const arch = (metadata[architecture] ?? {}) as Record<string, unknown>;
  const modelInfo = flatten(metadata, false);
  delete modelInfo["tokenizer.chat_template"];
  const vocabulary = Array.isArray(ggml.tokens) ? ggml.tokens : [];
  const infill = "tokenizer.ggml.prefix_token_id" in modelInfo || "tokenizer.ggml.fim_pre_token_id" in modelInfo ||
    vocabulary.some((t) => t === "<fim_prefix>" || t === "<|fim_prefix|>");
  const fileType = typeof general.file_type === "number" ? FILE_TYPES[general.file_type] : undefined;
  return {
    details: {
      parent_model: "",
      format: "gguf",
      family: architecture,
      families: architecture ? [architecture] : null,
      parameter_size: parameterSize(general.parameter_count, general.size_label),
      quantization_level: quantOfFile(location.file) ?? fileType ?? "unknown",
    },
    modelInfo,
    template: typeof tokenizer.chat_template === "string" ? tokenizer.chat_template : "",
    infill,
    license: typeof general.license === "string" ? general.license : undefined,
    trainContextLength: typeof arch.context_length === "number" ? arch.context_length : undefined,
  };
}

async function onnxFacts(location: ModelLocation): Promise<Omit<ModelFacts, "digest" | "modifiedAt">> {
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await Deno.readTextFile(`${location.dir}/config.json`));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound || error instanceof SyntaxError)) throw error;
  }
  const family = typeof config.model_type === "string" ? config.model_type : "";
  const modelInfo = Object.fromEntries(
    Object.entries(config).filter(([, v]) => typeof v !== "object" || v === null).map((
      [k, v],
    ) => [`${family}.${k}`, v]),
  );
  return {
    details: {
      parent_model: "",
      format: "onnx",
      family,
      families: family ? [family] : null,
      parameter_size: "",
      quantization_level: /quantized|int8|q8/i.test(location.file) ? "Q8_0" : "F32",
    },
    modelInfo,
    template: "",
    infill: false,
    trainContextLength: typeof config.max_position_embeddings === "number" ? config.max_position_embeddings : undefined,
  };
}

/** What is known of a GGUF whose header cannot be read (a partial or foreign file): its name. */
function unreadable(location: ModelLocation): Omit<ModelFacts, "digest" | "modifiedAt"> {
  return {
    details: {
      parent_model: "",
      format: location.format,
      family: "",
      families: null,
      parameter_size: "",
      quantization_level: quantOfFile(location.file) ?? "unknown",
    },
    modelInfo: {},
    template: "",
    infill: false,
  };
}

/**
 * Facts per model file, re-read only when the file changes.
 *
 * @example
 * ```ts
 * const facts = await new ModelFactsCache().of(await models.cache.locate("org/name"));
 * facts.details.quantization_level; // "Q4_1"
 * ```
 */
export class ModelFactsCache {
  readonly #entries = new Map<string, { key: string; facts: Promise<ModelFacts> }>();

  /** The facts of the file `location` points at. */
  async of(location: ModelLocation): Promise<ModelFacts> {
    const info = await Deno.stat(location.file);
    const key = `${info.size}:${info.mtime?.getTime() ?? 0}`;
    const cached = this.#entries.get(location.file);
    if (cached?.key === key) return await cached.facts;
    const facts = (async () => ({
      ...(location.format === "gguf"
        ? await ggufFacts(location).catch(() => unreadable(location))
        : await onnxFacts(location)),
      digest: digestOf(location, info),
      modifiedAt: info.mtime ?? new Date(0),
    }))();
    this.#entries.set(location.file, { key, facts });
    facts.catch(() => this.#entries.delete(location.file));
    return await facts;
  }
}
