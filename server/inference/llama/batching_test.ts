import assert from "node:assert/strict";
import type { BatchItem } from "node-llama-cpp";
import { separatePrompts, shareBatch } from "./batching.ts";

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

Deno.test("separatePrompts: a prompt gets a batch of its own; decode steps share one", () => {
  const [decodeA, prompt, decodeB, prompt2] = [item(1), item(40), item(1), item(30)];
  const first = separatePrompts([decodeA, prompt, decodeB, prompt2], 512);
  assert.deepEqual(first.map((x) => [x.item, x.processAmount]), [[prompt, 40]]);
  assert.deepEqual(separatePrompts([item(900)], 512).map((x) => x.processAmount), [512]);
  const steps = separatePrompts([decodeA, decodeB], 512);
  assert.deepEqual(steps.map((x) => [x.item, x.processAmount]), [[decodeA, 1], [decodeB, 1]]);
});
