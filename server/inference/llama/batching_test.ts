import assert from "node:assert/strict";
import type { BatchItem } from "node-llama-cpp";
import { shareBatch } from "./batching.ts";

const item = (tokens: number): BatchItem => ({
  tokens: Array.from({ length: tokens }, (_, i) => i) as never,
  logits: Array.from({ length: tokens }, () => undefined),
  evaluationPriority: 5,
});

Deno.test("shareBatch: every item gets an equal part first, then the slots left go in order", () => {
  const [a, b, c] = [item(1), item(100), item(100)];
  assert.deepEqual(shareBatch([a, b, c], 64).map((x) => x.processAmount), [1, 42, 21]);
  assert.deepEqual(shareBatch([a, b], 512).map((x) => x.processAmount), [1, 100]);
  // More items than slots: the first ones get one token each.
  assert.deepEqual(shareBatch([a, b, c], 2).map((x) => x.processAmount), [1, 1]);
});
