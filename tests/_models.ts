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
