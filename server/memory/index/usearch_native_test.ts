/**
 * usearch's locally built binding: the patch applies to the installed package's lib.cpp, and where
 * setup built it, a search's expansion takes effect for that search only.
 */
import assert from "node:assert/strict";
import { patchLibCpp } from "../../../scripts/usearch_native.ts";
import { createAnnIndex } from "./ann.ts";
import { exactSearch } from "./exact.ts";
import { usearchNative } from "./usearch_native.ts";

const LIB_CPP = new URL("../../../node_modules/usearch/javascript/lib.cpp", import.meta.url);

Deno.test("usearch build: the patch adds changeExpansionSearch to the installed lib.cpp, and refuses another", async () => {
  const source = await Deno.readTextFile(LIB_CPP);
  const patched = patchLibCpp(source);
  assert.ok(!source.includes("ChangeExpansionSearch"));
  assert.match(patched, /void ChangeExpansionSearch\(Napi::CallbackInfo const& ctx\);/);
  assert.match(patched, /InstanceMethod\("changeExpansionSearch", &CompiledIndex::ChangeExpansionSearch\)/);
  assert.match(patched, /native_->change_expansion_search\(/);
  assert.throws(() => patchLibCpp(source.replace('InstanceMethod("search"', 'InstanceMethod("find"')), /changed/);
});

/** `rows` seeded random unit vectors of `dims` dimensions (uniform: a hard case for a small expansion). */
function randomVectors(rows: number, dims: number, seed: number): Float32Array {
  let state = seed;
  const next = () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31) - 0.5;
  const out = new Float32Array(rows * dims);
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let d = 0; d < dims; d++) norm += (out[r * dims + d] = next()) ** 2;
    for (let d = 0; d < dims; d++) out[r * dims + d] /= Math.sqrt(norm);
  }
  return out;
}

Deno.test({
  name: "usearch binding built here: a search's expansion changes its recall for that search only",
  ignore: !usearchNative(), // setup builds it; where the build failed the prebuilt binding serves
  fn: () => {
    const dims = 48;
    const data = randomVectors(4_000, dims, 11);
    const queries = randomVectors(40, dims, 12);
    const keys = Array.from({ length: 4_000 }, (_, i) => i);
    const index = createAnnIndex("usearch", { dimensions: dims, metric: "cosine" });
    assert.equal(index.perSearchExpansion, true);
    index.addMany(keys, data);
    const recall = (expansion?: number) => {
      let hits = 0;
      for (let q = 0; q < 40; q++) {
        const query = queries.subarray(q * dims, (q + 1) * dims);
        const truth = new Set(exactSearch(query, data, keys, 10, "cosine").keys);
        hits += index.search(query, 10, expansion).keys.filter((key) => truth.has(key)).length;
      }
      return hits / 400;
    };
    const before = recall();
    const narrow = recall(10);
    const wide = recall(1_000);
    assert.ok(narrow < before, `expansion 10: recall ${narrow}, default ${before}`);
    assert.ok(wide > before && wide >= 0.99, `expansion 1000: recall ${wide}, default ${before}`);
    // the index's own expansion is back for a search that names none
    assert.equal(recall(), before);
  },
});
