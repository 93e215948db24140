import assert from "node:assert/strict";
import { defaultCatalog, matchesAny, MODEL_TASKS, parseCatalog } from "./catalog.ts";

Deno.test("the built-in catalog is valid and covers every task", () => {
  const catalog = defaultCatalog();
  for (const task of MODEL_TASKS) assert.ok(catalog.some((m) => m.task === task), `no ${task} model`);
  for (const entry of catalog) assert.ok(entry.min_ram_bytes > 0 && entry.license.length > 0);
});

Deno.test("a catalog entry with a bad id or a traversal path is refused", () => {
  const entry = {
    id: "not-an-org-name",
    name: "x",
    task: "chat",
    format: "gguf",
    revision: null,
    files: [{ path: "../../etc/passwd", size: null, sha256: null }],
    approx_bytes: 1,
    license: "mit",
    min_ram_bytes: 1,
  };
  assert.throws(() => parseCatalog({ version: 1, models: [entry] }), /id/);
  assert.throws(() => parseCatalog({ version: 1, models: [{ ...entry, id: "a/b" }] }), /relative path/);
});

Deno.test("globs match within and across folders", () => {
  assert.ok(matchesAny("mmproj-SmolVLM-256M-Instruct-Q8_0.gguf", ["*Q8_0.gguf"]));
  assert.ok(!matchesAny("onnx/model.onnx", ["*.onnx"]));
  assert.ok(matchesAny("onnx/model.onnx", ["**/*.onnx"]));
  assert.deepEqual(matchesAny("abc", ["a?c"]), true);
});
