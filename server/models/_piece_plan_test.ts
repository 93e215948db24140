import assert from "node:assert/strict";
import { type ChunkState, freshState } from "./_chunk_state.ts";
import { chooseRunBytes, chooseUnitBytes, planRuns, type Run } from "./_piece_plan.ts";

const MiB = 1024 * 1024;

function unitLength(state: ChunkState, size: number, u: number): number {
  return Math.min(size, (u + 1) * state.pieceBytes) - u * state.pieceBytes;
}

/** Every byte the state lacks is in exactly one run, no written byte is, runs end on unit bounds. */
function assertCoversMissing(state: ChunkState, size: number, runs: Run[]): void {
  const missing: Run[] = [];
  for (let u = 0; u < state.done.length; u++) {
    const from = u * state.pieceBytes + state.done[u];
    const to = u * state.pieceBytes + unitLength(state, size, u);
    if (from < to) missing.push({ from, to });
  }
  // Flatten both into unit-sized pieces and compare.
  const split = (spans: Run[]) =>
    spans.flatMap(({ from, to }) => {
      const out: string[] = [];
      while (from < to) {
        const end = Math.min(to, (Math.floor(from / state.pieceBytes) + 1) * state.pieceBytes);
        out.push(`${from}-${end}`);
        from = end;
      }
      return out;
    });
  assert.deepEqual(split(runs), split(missing));
  for (let i = 1; i < runs.length; i++) assert.ok(runs[i - 1].to <= runs[i].from, "runs are in file order");
  for (const run of runs) {
    assert.ok(run.to % state.pieceBytes === 0 || run.to === size || missing.some((m) => m.to === run.to));
  }
}

Deno.test("a fresh 256 MiB file: staggered first runs, equal middle runs, quarter-size last runs", () => {
  const size = 256 * MiB;
  const runBytes = chooseRunBytes(size, 8);
  const unit = chooseUnitBytes(size, runBytes, 8);
  assert.deepEqual([runBytes, unit], [8 * MiB, MiB]);
  const state = freshState(size, "id", unit);
  const runs = planRuns(state, size, { connections: 8, runBytes });
  assertCoversMissing(state, size, runs);
  const lengths = runs.map((run) => (run.to - run.from) / MiB);
  assert.deepEqual(lengths.slice(0, 8), [1, 2, 3, 4, 5, 6, 7, 8]);
  const tail = runs.findIndex((run) => run.from >= size - 32 * MiB);
  assert.ok(lengths.slice(8, tail).every((n) => n === 8), "equal runs in the middle");
  assert.ok(lengths.slice(tail).every((n) => n === 2), "quarter runs in the last 8 × 8 MiB / 2");
  assert.ok(lengths.length - tail >= 12);
  assert.ok(runs.length < 64, `${runs.length} requests`);
});

Deno.test("a resumed state: runs cover exactly the missing bytes, starting where each unit stopped", () => {
  const size = 40 * MiB + 12345;
  const state = freshState(size, "id", MiB);
  let seed = 5;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let trial = 0; trial < 50; trial++) {
    for (let u = 0; u < state.done.length; u++) {
      const pick = random();
      const length = unitLength(state, size, u);
      state.done[u] = pick < 0.3 ? length : pick < 0.5 ? Math.floor(random() * length) : 0;
    }
    for (const connections of [1, 3, 8]) {
      for (const runBytes of [MiB, 4 * MiB]) {
        assertCoversMissing(state, size, planRuns(state, size, { connections, runBytes }));
      }
    }
  }
  state.done = state.done.map((_, u) => unitLength(state, size, u));
  assert.deepEqual(planRuns(state, size, { connections: 8, runBytes: MiB }), []);
});

Deno.test("a state with coarse units (an older layout) still plans whole units", () => {
  const size = 100 * MiB;
  const state = freshState(size, "id", 16 * MiB);
  state.done[0] = 5 * MiB;
  const runs = planRuns(state, size, { connections: 8, runBytes: 4 * MiB });
  assertCoversMissing(state, size, runs);
  assert.deepEqual(runs[0], { from: 5 * MiB, to: 16 * MiB });
});
