import { deepEqual as assertEquals, equal, ok as assert, throws } from "node:assert/strict";
import { MANIFEST_FILE, ModelCache } from "./cache.ts";

Deno.test("the cache lists models with their manifest, size on disk and completeness, and deletes them", async () => {
  const root = await Deno.makeTempDir({ prefix: "tabagent-cache-" });
  try {
    const cache = new ModelCache(root);
    assertEquals(await cache.list(), []);
    const dir = cache.dirFor("org/name");
    equal(dir, `${root}/org--name`);
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
    equal(model.id, "org/name");
    equal(model.complete, true);
    assertEquals(model.files, [{ path: "onnx/model.onnx", size: 5000 }]);
    assert(model.sizeOnDisk >= 5000);
    equal(model.manifest?.revision, "a".repeat(40));

    // A missing file makes the model incomplete, whatever the manifest says.
    await Deno.remove(`${dir}/onnx/model.onnx`);
    equal((await cache.get("org/name"))?.complete, false);
    // A torn manifest reads as none.
    await Deno.writeTextFile(`${dir}/${MANIFEST_FILE}`, "{");
    equal((await cache.get("org/name"))?.manifest, null);

    throws(() => cache.filePath("org/name", "../../etc/passwd"), /unsafe/);
    equal(await cache.delete("org/name"), true);
    equal(await cache.get("org/name"), null);
    equal(await cache.delete("org/name"), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
