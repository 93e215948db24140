/**
 * The ranking arithmetic of a hybrid query, pure and synchronous: reciprocal rank fusion of ranked
 * lists, a recency and importance blend, and maximal marginal relevance for diversity.
 */

/** RRF's damping constant: ranks beyond ~60 contribute little (Cormack et al., 2009). */
export const RRF_K = 60;

/**
 * Fuses ranked lists of ids: each id scores Σ weight / (RRF_K + rank) over the lists it is in
 * (rank from 1). Returns ids best first with their fused scores.
 *
 * @example
 * ```ts
 * reciprocalRankFusion([{ ids: ["a", "b"], weight: 1 }, { ids: ["b", "c"], weight: 1 }]);
 * // b first: it is in both lists
 * ```
 */
export function reciprocalRankFusion<T>(
  lists: { ids: T[]; weight: number }[],
  k = RRF_K,
): { id: T; score: number }[] {
  const scores = new Map<T, number>();
  for (const list of lists) {
    if (list.weight <= 0) continue;
    list.ids.forEach((id, rank) => scores.set(id, (scores.get(id) ?? 0) + list.weight / (k + rank + 1)));
  }
  // one object per id, without the [id, score] pair per entry that spreading the map would make
  const fused: { id: T; score: number }[] = [];
  scores.forEach((score, id) => fused.push({ id, score }));
  return fused.sort((a, b) => b.score - a.score);
}

/** Fused lists of numeric ids, flat: `ids[i]` scores `scores[i]`; `order` holds the positions, best first. */
export interface FusedRanks {
  ids: Float64Array;
  scores: Float64Array;
  order: Uint32Array;
}

/** Up to this many ids in all, an id's earlier entry is found by a scan; past it, through a map. */
const FUSE_SCAN_LIMIT = 256;

/**
 * {@link reciprocalRankFusion} of numeric ids (a hybrid query's item keys) into typed arrays: the
 * same scores, and the same order (ties in first-seen order, as its stable sort leaves them). A
 * query's lists are short (5 × k each by default), so each id's earlier entry is found by a scan
 * instead of a map: the map, an object per id and the numbers boxed in them made ~16 KB of garbage
 * per query in the index worker (against ~3 KB), whose young-generation collections (~1 ms each)
 * landed on hybrid queries.
 *
 * @example
 * ```ts
 * const { ids, order } = fuseRanks([{ ids: [7, 8], weight: 1 }, { ids: [8, 9], weight: 1 }]);
 * ids[order[0]]; // 8: it is in both lists
 * ```
 */
export function fuseRanks(lists: { ids: readonly number[]; weight: number }[], k = RRF_K): FusedRanks {
  let total = 0;
  for (const list of lists) if (list.weight > 0) total += list.ids.length;
  const ids = new Float64Array(total);
  const scores = new Float64Array(total);
  const positions = total > FUSE_SCAN_LIMIT ? new Map<number, number>() : null;
  let count = 0;
  for (const list of lists) {
    if (list.weight <= 0) continue;
    for (let rank = 0; rank < list.ids.length; rank++) {
      const id = list.ids[rank];
      const score = list.weight / (k + rank + 1);
      let at = -1;
      if (positions) at = positions.get(id) ?? -1;
      else for (let i = 0; i < count && at < 0; i++) if (ids[i] === id) at = i;
      if (at >= 0) scores[at] += score;
      else {
        positions?.set(id, count);
        ids[count] = id;
        scores[count++] = score;
      }
    }
  }
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  return { ids: ids.subarray(0, count), scores: scores.subarray(0, count), order };
}

/** How much recency and importance count against relevance (the rest). */
export interface RankingWeights {
  recency: number;
  importance: number;
  /** Age at which recency is worth half (days). */
  halfLifeDays: number;
}

/**
 * Blends relevance (scaled to the best candidate's) with recency (exponential decay by age) and
 * importance (0..1): `(1 − r − i)·relevance + r·recency + i·importance`.
 */
export function blendScore(
  relevance: number,
  best: number,
  ageMs: number,
  importance: number,
  weights: RankingWeights,
): number {
  const recency = 0.5 ** (Math.max(0, ageMs) / (weights.halfLifeDays * 86_400_000));
  const base = Math.max(0, 1 - weights.recency - weights.importance);
  return base * (best > 0 ? relevance / best : 0) + weights.recency * recency +
    weights.importance * Math.min(1, Math.max(0, importance));
}

/** Cosine similarity of two vectors. */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / (Math.sqrt(na * nb) || 1);
}

/**
 * Maximal marginal relevance: picks `k` of `candidates` (best first, scores in 0..1), each time the
 * one maximising `λ·score − (1 − λ)·max similarity to those already picked`. Candidates without a
 * vector are never penalised.
 */
export function maximalMarginalRelevance<T>(
  candidates: { id: T; score: number; vector?: Float32Array }[],
  k: number,
  lambda: number,
): { id: T; score: number }[] {
  const left = [...candidates];
  const picked: typeof candidates = [];
  while (picked.length < k && left.length) {
    let best = 0;
    let bestValue = -Infinity;
    left.forEach((candidate, i) => {
      let redundancy = 0;
      if (candidate.vector) {
        for (const chosen of picked) {
          if (chosen.vector) redundancy = Math.max(redundancy, cosineSimilarity(candidate.vector, chosen.vector));
        }
      }
      const value = lambda * candidate.score - (1 - lambda) * redundancy;
      if (value > bestValue) {
        bestValue = value;
        best = i;
      }
    });
    picked.push(left.splice(best, 1)[0]);
  }
  return picked.map(({ id, score }) => ({ id, score }));
}

/** Discounted cumulative gain at `k` of a ranking, normalised by the ideal ranking's (graded relevance). */
export function ndcgAtK<T>(ranked: T[], relevance: Map<T, number>, k: number): number {
  const dcg = (gains: number[]) => gains.slice(0, k).reduce((sum, g, i) => sum + (2 ** g - 1) / Math.log2(i + 2), 0);
  const ideal = dcg([...relevance.values()].sort((a, b) => b - a));
  return ideal > 0 ? dcg(ranked.map((id) => relevance.get(id) ?? 0)) / ideal : 0;
}
