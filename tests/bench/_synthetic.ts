/**
 * Synthetic data for the memory and retrieval benches: a seeded random generator, so runs compare the
 * same data, and a fixed vocabulary of made-up words drawn with Zipf(1) frequencies (weight 1/rank), so
 * full-text search sees a realistic mix of common and rare terms.
 * @module
 */

/** mulberry32: a small seeded generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ZipfVocabulary {
  /** The words, most frequent first. */
  readonly words: readonly string[];
  /** One word drawn with weight 1/rank. */
  word(): string;
}

/** A vocabulary of `size` words drawn with `random` (a seeded generator in [0, 1)). */
export function zipfVocabulary(size: number, random: () => number): ZipfVocabulary {
  const words = Array.from({ length: size }, (_, i) => {
    let word = "";
    for (let n = i + 1; n > 0; n = Math.floor(n / 26)) word += "abcdefghijklmnopqrstuvwxyz"[n % 26];
    return word + "o";
  });
  const cumulative = new Float64Array(size);
  for (let i = 0, sum = 0; i < size; i++) cumulative[i] = sum += 1 / (i + 1);
  return {
    words,
    word() {
      const target = random() * cumulative[size - 1];
      let lo = 0, hi = size - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid] < target) lo = mid + 1;
        else hi = mid;
      }
      return words[lo];
    },
  };
}
