import assert from "node:assert/strict";
import { METRICS } from "./ann.ts";
import { distance, exactSearch } from "./exact.ts";

Deno.test("exact search: the k nearest rows by each metric, closest first, as the per-row distance ranks them", () => {
  let state = 11;
  const next = () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31) - 0.5;
  const dims = 37; // not a multiple of 4: the unrolled loop's tail counts too
  const rows = 300;
  const matrix = Float32Array.from({ length: rows * dims }, next);
  const query = Float32Array.from({ length: dims }, next);
  const keys = Array.from({ length: rows }, (_, i) => i * 10);
  for (const metric of METRICS) {
    const found = exactSearch(query, matrix, keys, 7, metric);
    const expected = Array.from({ length: rows }, (_, row) => ({ row, d: distance(metric, query, matrix, row) }))
      .sort((a, b) => a.d - b.d).slice(0, 7);
    assert.deepEqual(found.keys, expected.map((e) => keys[e.row]), metric);
    found.distances.forEach((d, i) => assert.ok(Math.abs(d - expected[i].d) < 1e-5, `${metric} ${d} ${expected[i].d}`));
  }
  assert.deepEqual(exactSearch(query, matrix.subarray(0, dims * 2), keys, 5, "cosine").keys.length, 2);
});
