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

/** Dot product of `a` with row `offset` of `matrix`, unrolled by four (V8 keeps four accumulators in registers). */
function dotAt(a: Float32Array, matrix: Float32Array, offset: number): number {
  const d = a.length;
  const tail = d & ~3;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i < tail; i += 4) {
    s0 += a[i] * matrix[offset + i];
    s1 += a[i + 1] * matrix[offset + i + 1];
    s2 += a[i + 2] * matrix[offset + i + 2];
    s3 += a[i + 3] * matrix[offset + i + 3];
  }
  for (; i < d; i++) s0 += a[i] * matrix[offset + i];
  return s0 + s1 + s2 + s3;
}

/** Squared norm of the `d` values of `matrix` from `offset`. */
function norm2At(matrix: Float32Array, offset: number, d: number): number {
  let s0 = 0, s1 = 0;
  let i = 0;
  for (; i + 1 < d; i += 2) {
    s0 += matrix[offset + i] * matrix[offset + i];
    s1 += matrix[offset + i + 1] * matrix[offset + i + 1];
  }
  for (; i < d; i++) s0 += matrix[offset + i] * matrix[offset + i];
  return s0 + s1;
}

/**
 * The `k` rows of `matrix` (row-major, `query.length` columns) closest to `query`, closest first,
 * reported by `keys[row]`. One tight loop per row: a dot product (and for cosine the row's norm;
 * `l2` expands to |q|² − 2q·r + |r|²), so it is as fast as plain JavaScript brute force gets, a
 * fair baseline for the index.
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
  const d = query.length;
  const rows = Math.floor(matrix.length / d);
  const size = Math.min(k, rows);
  const queryNorm2 = dotAt(query, query, 0);
  // a bounded max-heap of the best `size` (largest distance on top)
  const heapDist = new Float64Array(size);
  const heapRow = new Int32Array(size);
  let filled = 0;
  for (let row = 0, offset = 0; row < rows; row++, offset += d) {
    const dot = dotAt(query, matrix, offset);
    let dist: number;
    if (metric === "ip") dist = 1 - dot;
    else {
      const rowNorm2 = norm2At(matrix, offset, d);
      dist = metric === "l2"
        ? Math.max(0, queryNorm2 - 2 * dot + rowNorm2)
        : 1 - dot / (Math.sqrt(queryNorm2 * rowNorm2) || 1);
    }
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
