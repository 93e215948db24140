import assert from "node:assert/strict";
import type { BatchItem } from "node-llama-cpp";
import { groupPrompts, LockstepGate, separatePrompts, shareBatch } from "./batching.ts";

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

Deno.test("groupPrompts: waiting prompts share a batch without decode steps; decode steps share one", () => {
  const [decodeA, prompt, decodeB, prompt2] = [item(1), item(40), item(1), item(30)];
  const first = groupPrompts([decodeA, prompt, decodeB, prompt2], 512);
  assert.deepEqual(first.map((x) => [x.item, x.processAmount]), [[prompt, 40], [prompt2, 30]]);
  // A batch too small for both: shared fairly, the rest next time.
  assert.deepEqual(groupPrompts([prompt, prompt2], 50).map((x) => x.processAmount), [25, 25]);
  const steps = groupPrompts([decodeA, decodeB], 512);
  assert.deepEqual(steps.map((x) => [x.item, x.processAmount]), [[decodeA, 1], [decodeB, 1]]);
});

/** Runs `tokens` through `gate`, logging when the step got through (node-llama-cpp's queueing, here a log line). */
function step(gate: LockstepGate, name: string, log: string[], tokens = 1) {
  return gate.decode(tokens, () => {
    log.push(name);
    return Promise.resolve(name);
  });
}

Deno.test("LockstepGate: a step waits until every generating sequence has queued its own, then all go together", async () => {
  const gate = new LockstepGate({ min: 60_000, max: 60_000 }); // no timeout in this test
  const log: string[] = [];
  for (let i = 0; i < 3; i++) gate.begin();
  const a = step(gate, "a", log);
  const b = step(gate, "b", log);
  await Promise.resolve();
  assert.deepEqual(log, []);
  assert.equal(gate.waiting, 2);
  const c = step(gate, "c", log);
  assert.deepEqual(await Promise.all([a, b, c]), ["a", "b", "c"]);
  assert.deepEqual(log, ["a", "b", "c"]);
  assert.equal(gate.together, 1);
  // A sequence that stops generating is no longer waited for.
  const d = step(gate, "d", log);
  const e = step(gate, "e", log);
  gate.end();
  await Promise.all([d, e]);
  assert.equal(gate.waiting, 0);
});

Deno.test("LockstepGate: prompts are never held, and steps do not wait for a sequence evaluating its prompt", async () => {
  const gate = new LockstepGate({ min: 60_000, max: 60_000 });
  const log: string[] = [];
  gate.begin();
  gate.begin();
  let finishPrompt!: () => void;
  const prompt = gate.decode(40, () => {
    log.push("prompt");
    return new Promise<void>((resolve) => finishPrompt = resolve);
  });
  await step(gate, "step", log);
  assert.deepEqual(log, ["prompt", "step"]);
  finishPrompt();
  await prompt;
  // A lone generating sequence never waits.
  gate.end();
  await step(gate, "alone", log);
  assert.deepEqual(log, ["prompt", "step", "alone"]);
});

Deno.test("LockstepGate: a step waits no longer than its bound for a sequence that does not come", async () => {
  const gate = new LockstepGate({ min: 5, max: 5 });
  const log: string[] = [];
  gate.begin();
  gate.begin();
  const began = performance.now();
  await step(gate, "a", log);
  assert.ok(performance.now() - began >= 4, "released by the bound, not at once");
  assert.equal(gate.waiting, 0);
  assert.equal(gate.together, 0);
});
