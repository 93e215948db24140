import assert from "node:assert/strict";
import { TabAgentError } from "../../errors/mod.ts";
import { loadTokenizer } from "./tokenizer.ts";

const FIXTURES = decodeURIComponent(new URL("../../../tests/.fixtures", import.meta.url).pathname);

Deno.test("loads the fixture's byte-level BPE tokenizer.json: merges apply and text round-trips", async () => {
  const tokenizer = await loadTokenizer(FIXTURES);
  assert.equal(tokenizer.kind, "BPE");
  const text = "the weather is there";
  const { ids, attentionMask } = tokenizer.encode(text);
  // "the" is one merged token, so fewer tokens than bytes.
  assert.ok(ids.length < new TextEncoder().encode(text).length);
  assert.equal(attentionMask.length, ids.length);
  assert.equal(tokenizer.decode(ids), text);
  assert.equal(tokenizer.countTokens(text), ids.length);
  assert.equal(typeof tokenizer.tokenToId("<|im_end|>"), "number");
});

Deno.test("a folder without tokenizer.json is not_found; a broken one is storage_corrupt", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof TabAgentError && e.code === "not_found");
    await Deno.writeTextFile(`${dir}/tokenizer.json`, "{not json");
    await assert.rejects(
      loadTokenizer(dir),
      (e: unknown) => e instanceof TabAgentError && e.code === "storage_corrupt",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
