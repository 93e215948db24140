import assert from "node:assert/strict";
import { TabAgentError } from "../../errors/mod.ts";
import { createAnnIndex } from "./ann.ts";
import { itemKey, keyItem, keyKind, KIND_CODES } from "./keys.ts";

Deno.test("keys: every kind and row id round-trips; an unknown code is refused", () => {
  for (const kind of Object.keys(KIND_CODES) as (keyof typeof KIND_CODES)[]) {
    for (const id of [0, 1, 2 ** 31 + 7, 2 ** 40 - 1]) {
      const key = itemKey(kind, id);
      assert.deepEqual(keyItem(key), { kind, id });
      assert.equal(keyKind(key), kind);
    }
  }
  assert.throws(() => keyKind(99 * 2 ** 40), TabAgentError);
  assert.throws(() => keyItem(0), TabAgentError);
});

Deno.test("keys: the usearch index answers keys above 2^32 exactly", () => {
  const index = createAnnIndex("usearch", { dimensions: 2, metric: "cosine" });
  const keys = [itemKey("message", 2 ** 32 + 3), itemKey("chunk", 2 ** 40 - 1), itemKey("fact", 5)];
  index.addMany(keys, new Float32Array([1, 0, 0, 1, 0.7, 0.7]));
  assert.deepEqual(index.search(new Float32Array([1, 0.01]), 1).keys, [keys[0]]);
  assert.deepEqual(index.search(new Float32Array([0.01, 1]), 1).keys, [keys[1]]);
  assert.deepEqual(new Set(index.search(new Float32Array([1, 1]), 3).keys), new Set(keys));
});
