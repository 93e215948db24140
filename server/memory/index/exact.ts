/**
 * Exact nearest neighbours by brute force: the baseline the benchmark measures the HNSW index
 * against, and the rerank step of a converged query (a structural filter leaves few candidates,
 * whose exact distances are cheaper than a graph walk that would skip most of them).
 */
import type { AnnMatches, Metric } from "./ann.ts";

/** The distance `metric` gives between `a` and row `row` of `matrix` (same convention as the index). */
export function distance(metric: Metric, a: Float32Array, matrix: Float32Array, row: number): number {
  const d = a.length;
  const offset = row * d;
  if (metric === "l2") {
    let sum = 0;
    for (let i = 0; i < d; i++) {
      const diff = a[i] - matrix[offset + i];
      sum += diff * diff;
    }
    return sum;
  }
  let dot = 0;
  for (let i = 0; i < d; i++) dot += a[i] * matrix[offset + i];
  if (metric === "ip") return 1 - dot;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < d; i++) {
    na += a[i] * a[i];
    nb += matrix[offset + i] * matrix[offset + i];
  }
  return 1 - dot / (Math.sqrt(na * nb) || 1);
}

/**
 * The `k` rows of `matrix` (row-major, `query.length` columns) closest to `query`, closest first,
 * reported by `keys[row]`.
 *
 * @example
 * ```ts
 * exactSearch(query, matrix, keys, 10, "cosine"); // { keys: [...], distances: [...] }
 * ```
 */
export function exactSearch(
  query: Float32Array,
  matrix: Float32Array,
  keys: ArrayLike<number>,
  k: number,
  metric: Metric,
): AnnMatches {
  const rows = Math.floor(matrix.length / query.length);
  const size = Math.min(k, rows);
  // a bounded max-heap of the best `size` (largest distance on top)
  const heapDist = new Float64Array(size);
  const heapRow = new Int32Array(size);
  let filled = 0;
  for (let row = 0; row < rows; row++) {
    const dist = distance(metric, query, matrix, row);
    if (filled < size) {
      let i = filled++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (heapDist[parent] >= dist) break;
        heapDist[i] = heapDist[parent];
        heapRow[i] = heapRow[parent];
        i = parent;
      }
      heapDist[i] = dist;
      heapRow[i] = row;
    } else if (size > 0 && dist < heapDist[0]) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= size) break;
        const right = left + 1;
        const bigger = right < size && heapDist[right] > heapDist[left] ? right : left;
        if (heapDist[bigger] <= dist) break;
        heapDist[i] = heapDist[bigger];
        heapRow[i] = heapRow[bigger];
        i = bigger;
      }
      heapDist[i] = dist;
      heapRow[i] = row;
    }
  }
  const order = Array.from({ length: filled }, (_, i) => i).sort((a, b) => heapDist[a] - heapDist[b]);
  return { keys: order.map((i) => keys[heapRow[i]]), distances: order.map((i) => heapDist[i]) };
}
