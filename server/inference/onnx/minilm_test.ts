import assert from "node:assert/strict";
import { loadTokenizer } from "../tokenizers/mod.ts";
import { EMBEDDING_SUB_BATCH, OnnxEmbeddingModel } from "./embedding.ts";

/** all-MiniLM-L6-v2 exported by scripts/export_minilm.py (setup step "MiniLM ONNX export (fixtures)"). */
const DIR =
  new URL("../../../tests/.fixtures/models/sentence-transformers--all-MiniLM-L6-v2", import.meta.url).pathname;

function cosine(a: Float32Array, b: Float32Array): number {
  return a.reduce((sum, v, i) => sum + v * b[i], 0);
}

Deno.test("MiniLM (ONNX): sentence-transformers' similarities, and batching changes no vector", async () => {
  const model = await OnnxEmbeddingModel.load(`${DIR}/onnx/model.onnx`, await loadTokenizer(DIR), {
    providers: ["cpu"],
    threads: 1,
    maxTokens: 256,
  });
  try {
    const texts = [
      "A man is eating food.",
      "A man is eating a piece of bread.",
      "The new movie is awesome and the popcorn was cold.",
      ...Array.from({ length: EMBEDDING_SUB_BATCH + 3 }, (_, i) => `note ${i}: ${"word ".repeat(i % 9)}end`),
      "long ".repeat(400), // past max_seq_length: truncated, not refused
    ];
    const { vectors, promptTokens } = await model.embed(texts);
    assert.deepEqual(vectors.length, texts.length);
    assert.ok(vectors.every((v) => v.length === 384 && Math.abs(cosine(v, v) - 1) < 1e-5));
    // the figures sentence-transformers gives for the same pair (see shared/VERIFIED.md)
    assert.ok(Math.abs(cosine(vectors[0], vectors[1]) - 0.755) < 0.01, `similar: ${cosine(vectors[0], vectors[1])}`);
    assert.ok(Math.abs(cosine(vectors[0], vectors[2])) < 0.1, `unrelated: ${cosine(vectors[0], vectors[2])}`);
    assert.ok(promptTokens <= texts.length * 256);
    // sorted sub-batches hand every vector back in input order, equal to embedding the text alone
    for (const i of [0, 2, 10, texts.length - 1]) {
      const alone = (await model.embed([texts[i]])).vectors[0];
      assert.ok(cosine(alone, vectors[i]) > 0.99999, `text ${i}`);
    }
  } finally {
    await model.close();
  }
});
