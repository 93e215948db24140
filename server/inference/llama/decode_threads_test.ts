import assert from "node:assert/strict";
import { DECODE_PROBE_STEPS, DECODE_RECHECK_EVERY, DecodeThreadTuner } from "./decode_threads.ts";

/** Runs `steps` decode steps of one sequence, each costing `costMs(threads)` on a fake clock; returns the counts used. */
function run(tuner: DecodeThreadTuner, clock: { t: number }, steps: number, costMs: (threads: number) => number) {
  const used: number[] = [];
  for (let i = 0; i < steps; i++) {
    const threads = tuner.threadsFor({ tokens: 1, sequences: 1 }, 2);
    used.push(threads);
    clock.t += costMs(threads);
  }
  return used;
}

Deno.test("decode steps settle on the faster count, whichever it is, and keep checking the other", () => {
  for (const [costs, faster] of [[{ 1: 14, 2: 19 }, 1], [{ 1: 30, 2: 18 }, 2]] as const) {
    const clock = { t: 0 };
    const tuner = new DecodeThreadTuner(() => clock.t);
    const cost = (threads: number) => costs[threads as 1 | 2];
    const probing = run(tuner, clock, 2 * DECODE_PROBE_STEPS + 1, cost);
    assert.deepEqual(new Set(probing), new Set([1, 2]), "both counts are tried first");
    assert.equal(tuner.chosen(2), faster);
    const settled = run(tuner, clock, 2 * DECODE_RECHECK_EVERY, cost);
    const other = settled.filter((t) => t !== faster).length;
    assert.ok(other >= 1 && other <= 3, `the other count is rechecked now and then (${other} of ${settled.length})`);
  }
});

Deno.test("a change in cost is noticed: the choice follows the faster count", () => {
  const clock = { t: 0 };
  const tuner = new DecodeThreadTuner(() => clock.t);
  run(tuner, clock, 4 * DECODE_PROBE_STEPS, (t) => (t === 1 ? 10 : 20));
  assert.equal(tuner.chosen(2), 1);
  // Other work now competes for the core that one thread used to have to itself.
  run(tuner, clock, 20 * DECODE_RECHECK_EVERY, (t) => (t === 1 ? 40 : 20));
  assert.equal(tuner.chosen(2), 2);
});

Deno.test("prompt batches get the cap; a single core and pauses between requests are not timed as steps", () => {
  const clock = { t: 0 };
  const tuner = new DecodeThreadTuner(() => clock.t);
  assert.equal(tuner.threadsFor({ tokens: 40, sequences: 1 }, 2), 2);
  assert.equal(tuner.threadsFor({ tokens: 7, sequences: 4 }, 4), 4, "a batch with prompt tokens in it");
  for (let i = 0; i < 4 * DECODE_PROBE_STEPS; i++) {
    assert.equal(tuner.threadsFor({ tokens: 3, sequences: 3 }, 2), 2, "sequences decoded together keep the cap");
  }
  assert.equal(tuner.threadsFor({ tokens: 1, sequences: 1 }, 1), 1);
  // Steps separated by long pauses teach nothing.
  for (let i = 0; i < 4 * DECODE_PROBE_STEPS; i++) {
    tuner.threadsFor({ tokens: 1, sequences: 1 }, 2);
    clock.t += 5_000;
  }
  assert.equal(tuner.chosen(2), undefined);
});
