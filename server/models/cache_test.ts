import assert from "node:assert/strict";
import { MANIFEST_FILE, ModelCache } from "./cache.ts";

Deno.test("the cache lists models with their manifest, size on disk and completeness, and deletes them", async () => {
  const root = await Deno.makeTempDir({ prefix: "tabagent-cache-" });
  try {
    const cache = new ModelCache(root);
    assert.deepEqual(await cache.list(), []);
    const dir = cache.dirFor("org/name");
    assert.equal(dir, `${root}/org--name`);
    await Deno.mkdir(`${dir}/onnx`, { recursive: true });
    await Deno.writeFile(`${dir}/onnx/model.onnx`, new Uint8Array(5000));
    await Deno.writeFile(`${dir}/onnx/extra.onnx.partial`, new Uint8Array(10));
    await cache.writeManifest({
      repo: "org/name",
      revision: "a".repeat(40),
      files: [{ path: "onnx/model.onnx", size: 5000, sha256: "b".repeat(64) }],
      complete: true,
      updated_at: new Date().toISOString(),
    });
    const [model] = await cache.list();
    assert.equal(model.id, "org/name");
    assert.equal(model.complete, true);
    assert.deepEqual(model.files, [{ path: "onnx/model.onnx", size: 5000 }]);
    assert.ok(model.sizeOnDisk >= 5000);
    assert.equal(model.manifest?.revision, "a".repeat(40));

    // A missing file makes the model incomplete, whatever the manifest says.
    await Deno.remove(`${dir}/onnx/model.onnx`);
    assert.equal((await cache.get("org/name"))?.complete, false);
    // A torn manifest reads as none.
    await Deno.writeTextFile(`${dir}/${MANIFEST_FILE}`, "{");
    assert.equal((await cache.get("org/name"))?.manifest, null);

    assert.throws(() => cache.filePath("org/name", "../../etc/passwd"), /unsafe/);
    assert.equal(await cache.delete("org/name"), true);
    assert.equal(await cache.get("org/name"), null);
    assert.equal(await cache.delete("org/name"), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
