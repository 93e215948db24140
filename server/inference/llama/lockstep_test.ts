import assert from "node:assert/strict";
import type { BatchItem } from "node-llama-cpp";
import { LOCKSTEP_MAX_WAITS, lockstepBatches, shareBatch } from "./lockstep.ts";

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

Deno.test("lockstepBatches: waits for every generating sequence's token, but only a bounded number of rounds", () => {
  let generating = 4;
  const strategy = lockstepBatches(() => generating);
  const three = [item(1), item(1), item(1)];
  // A straggler still on its way: empty rounds, until the bound.
  for (let round = 0; round < LOCKSTEP_MAX_WAITS; round++) assert.deepEqual(strategy({ items: three, size: 512 }), []);
  assert.equal(strategy({ items: three, size: 512 }).length, 3, "a sequence that never queues does not stall the rest");
  // All four queued: one batch of four at once.
  assert.equal(strategy({ items: [...three, item(1)], size: 512 }).length, 4);
  // Nothing generating (a background refill): no wait.
  generating = 0;
  assert.equal(strategy({ items: [item(32)], size: 512 })[0].processAmount, 32);
});
