/**
 * What a model folder in the cache is good for: the weights inference loads from it
 * ({@link locateWeights}), whether it counts as downloaded ({@link isDownloaded}), and the weight
 * format its files suggest ({@link guessFormat}). These are the cache layout's one set of answers:
 * the orchestrator, `GET /v1/models`, `tabagent models list` and pulls all ask here.
 * @module
 */

/** What these answers read of a cached model folder (`ModelCache.get` gives it). */
export interface ModelFolder {
  id: string;
  dir: string;
  /** Null when the folder has no manifest. */
  manifest: object | null;
  /** Every manifest file is present with its size. */
  complete: boolean;
  /** Files present, relative to `dir`. */
  files: { path: string; size: number }[];
}

/** What kind of runtime a model needs. */
export type ModelFormat = "gguf" | "onnx";

/** The weights of a model that inference can load. */
export interface ModelLocation {
  id: string;
  dir: string;
  format: ModelFormat;
  /** The weights file to load. */
  file: string;
  sizeBytes: number;
}

/** Extensions of weight files, in the order {@link guessFormat} prefers them. */
const WEIGHT_EXTENSIONS = ["gguf", "onnx", "safetensors", "tflite", "bin"] as const;

/** The weight format a file list suggests (`bin` never counts as a format). */
export function guessFormat(paths: string[]): string | undefined {
  for (const ext of WEIGHT_EXTENSIONS.slice(0, 4)) {
    if (paths.some((p) => p.toLowerCase().endsWith(`.${ext}`))) return ext;
  }
  return undefined;
}

function hasWeights(paths: string[]): boolean {
  return paths.some((p) => WEIGHT_EXTENSIONS.some((ext) => p.toLowerCase().endsWith(`.${ext}`)));
}

/**
 * True when a model folder is usable as it is: every manifest file is present, or there is no
 * manifest but there are weights (copied in by hand, or by an older tool).
 *
 * @example
 * ```ts
 * const model = await cache.get("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF");
 * if (model && isDownloaded(model)) console.log("ready to load");
 * ```
 */
export function isDownloaded(model: ModelFolder): boolean {
  return model.complete || (model.manifest === null && hasWeights(model.files.map((f) => f.path)));
}

/** Inference looks for weights at the top of the folder and in `onnx/`, as the Hub's repos lay them out. */
function searched(path: string): boolean {
  const slash = path.lastIndexOf("/");
  return slash === -1 || path.slice(0, slash) === "onnx";
}

/**
 * The weights inference loads from a model folder: a `*.gguf` (not a vision projector; the first
 * shard of a split model; the largest if several), or else an `*.onnx` with `tokenizer.json`
 * beside it. Null when there are none.
 *
 * @example
 * ```ts
 * const location = locateWeights((await cache.get("tabagent/tiny-chat"))!);
 * ```
 */
export function locateWeights(model: ModelFolder): ModelLocation | null {
  const { id, dir } = model;
  const all = model.files.filter((f) => searched(f.path));
  const gguf = all.filter((f) => f.path.endsWith(".gguf") && !/mmproj/i.test(f.path))
    .filter((f) => !/-\d{5}-of-\d{5}\.gguf$/.test(f.path) || /-00001-of-\d{5}\.gguf$/.test(f.path));
  if (gguf.length) {
    const pick = gguf.reduce((best, f) => (f.size > best.size ? f : best));
    return { id, dir, format: "gguf", file: `${dir}/${pick.path}`, sizeBytes: pick.size };
  }
  const onnx = all.filter((f) => f.path.endsWith(".onnx"));
  if (onnx.length && all.some((f) => f.path === "tokenizer.json")) {
    const preferred = onnx.find((f) => /(^|\/)model\.onnx$/.test(f.path)) ?? onnx[0];
    const extra = all.filter((f) => f.path.endsWith(".onnx_data") || f.path.endsWith(".onnx.data"));
    const size = preferred.size + extra.reduce((n, f) => n + f.size, 0);
    return { id, dir, format: "onnx", file: `${dir}/${preferred.path}`, sizeBytes: size };
  }
  return null;
}
