import assert from "node:assert/strict";
import { FIXTURE_MODELS, fixtureModelCache } from "../../tests/_models.ts";
import { TabAgentError } from "../errors/mod.ts";
import { ModelCache } from "./cache.ts";
import { defaultCatalog } from "./catalog/catalog.ts";
import { listModels } from "./listing.ts";

Deno.test("the cache locates GGUF and ONNX weights by id and refuses unknown or malformed ids", async () => {
  await using fixtures = await fixtureModelCache();
  const cache = new ModelCache(fixtures.path);
  assert.equal((await cache.locate(FIXTURE_MODELS.chat)).format, "gguf");
  const onnx = await cache.locate(FIXTURE_MODELS.embedOnnx);
  assert.equal(onnx.format, "onnx");
  assert.ok(onnx.file.endsWith("/model.onnx"));
  for (const id of ["nobody/nothing", "../etc", "a/../../b"]) {
    await assert.rejects(
      cache.locate(id),
      (e: unknown) => e instanceof TabAgentError && e.code === "not_found",
    );
  }
  // The default fixture cache holds what inference loads (GGUF, ONNX), not the Python service's Transformers models.
  const loadable = [FIXTURE_MODELS.chat, FIXTURE_MODELS.embedGguf, FIXTURE_MODELS.embedOnnx].sort();
  assert.deepEqual((await cache.listLocatable()).map((m) => m.id), loadable);
});

Deno.test("a GGUF copied into the cache by hand lists as downloaded and is what inference loads", async () => {
  const root = await Deno.makeTempDir({ prefix: "tabagent-by-hand-" });
  try {
    const cache = new ModelCache(root);
    const id = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
    await Deno.mkdir(cache.dirFor(id));
    // Listing and locating read names and sizes only: any bytes stand in for the weights.
    await Deno.writeFile(`${cache.dirFor(id)}/smollm2-135m-instruct-q4_1.gguf`, new Uint8Array(20 << 20));
    // A vision projector and a later shard are never what inference loads.
    await Deno.writeFile(`${cache.dirFor(id)}/mmproj-big.gguf`, new Uint8Array(10 << 20));
    const listed = (await listModels(cache, defaultCatalog())).find((m) => m.id === id);
    assert.equal(listed?.downloaded, true);
    assert.ok(listed.created > 0);
    assert.equal(listed.size, (await cache.get(id))?.sizeOnDisk);
    const location = await cache.locate(id);
    assert.equal(location.format, "gguf");
    assert.ok(location.file.endsWith("/smollm2-135m-instruct-q4_1.gguf"));

    // Without weights, a folder is not downloaded and has nothing to load.
    await Deno.mkdir(cache.dirFor("org/notes"));
    await Deno.writeTextFile(`${cache.dirFor("org/notes")}/README.md`, "hello");
    assert.equal((await listModels(cache, [])).find((m) => m.id === "org/notes")?.downloaded, false);
    await assert.rejects(
      cache.locate("org/notes"),
      (e: unknown) => e instanceof TabAgentError && e.code === "not_found",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
