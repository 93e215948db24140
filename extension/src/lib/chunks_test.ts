import assert from "node:assert/strict";
import { rankChunks, selectChunks, splitIntoChunks, words } from "./chunks.ts";

Deno.test("pages split at paragraphs and sentences, never over the limit", () => {
  const text = "First para.\n\nSecond one is longer. It has two sentences.\n\n" + "x".repeat(250);
  const chunks = splitIntoChunks(text, 100);
  for (const chunk of chunks) assert.ok(chunk.text.length <= 100, chunk.text);
  assert.equal(chunks.map((c) => c.text).join("").replace(/\s/g, "").length, text.replace(/\s/g, "").length);
  assert.deepEqual(chunks.map((c) => c.index), chunks.map((_, i) => i));
});

Deno.test("the passage that answers the question ranks first and selection keeps page order", () => {
  const chunks = [
    "Welcome to our site about European travel.",
    "Trains in Germany run often between cities.",
    "The capital of France is Paris, on the Seine.",
    "Contact us for bookings.",
  ].map((text, index) => ({ index, text }));
  const scores = rankChunks(chunks, "What is the capital of France?");
  assert.equal(scores.indexOf(Math.max(...scores)), 2);
  const picked = selectChunks(chunks, scores, [10, 10, 10, 10], 20);
  assert.deepEqual(picked.map((c) => c.index), [2]);
  assert.deepEqual(selectChunks(chunks, scores, [10, 10, 30, 10], 15).map((c) => c.index), []);
  // Nothing matches: the page from its start, as much as fits.
  assert.deepEqual(selectChunks(chunks, [0, 0, 0, 0], [10, 10, 10, 10], 25).map((c) => c.index), [0, 1]);
  assert.deepEqual(words("The Ünïcode café, 2024!"), ["ünïcode", "café", "2024"]);
});
