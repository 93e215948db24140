/**
 * "Ask about this page" when the page does not fit the model's context: split the readable text
 * into passages, rank them against the question (BM25 over words), and keep the best ones that
 * fit the token budget, in page order so the model reads them as the page has them.
 */

/** A passage of the page. */
export interface Chunk {
  index: number;
  text: string;
}

/** Splits text into passages of at most `maxChars`, at paragraph, then sentence, then word breaks. */
export function splitIntoChunks(text: string, maxChars: number): Chunk[] {
  const pieces: string[] = [];
  const push = (piece: string) => {
    const trimmed = piece.trim();
    if (trimmed) pieces.push(trimmed);
  };
  for (const paragraph of text.split(/\n\s*\n/)) {
    if (paragraph.length <= maxChars) {
      push(paragraph);
      continue;
    }
    let current = "";
    for (const sentence of paragraph.split(/(?<=[.!?])\s+/)) {
      if (sentence.length > maxChars) {
        push(current);
        current = "";
        for (let at = 0; at < sentence.length; at += maxChars) push(sentence.slice(at, at + maxChars));
        continue;
      }
      if (current.length + sentence.length + 1 > maxChars) {
        push(current);
        current = sentence;
      } else current = current ? `${current} ${sentence}` : sentence;
    }
    push(current);
  }
  // Merge small neighbours so passages carry context, never past maxChars.
  const merged: string[] = [];
  for (const piece of pieces) {
    const last = merged.at(-1);
    if (last !== undefined && last.length + piece.length + 2 <= maxChars / 2) {
      merged[merged.length - 1] = `${last}\n\n${piece}`;
    } else merged.push(piece);
  }
  return merged.map((text, index) => ({ index, text }));
}

const STOP_WORDS = new Set(
  "a an and are as at be by for from has have in is it its of on or that the this to was were what when where which who why how with about does do you your i me my"
    .split(" "),
);

/** Lower-cased words without stop words (letters and digits of any script). */
export function words(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => w.length > 1 && !STOP_WORDS.has(w));
}

/** BM25 scores of each chunk for `query` (k1 1.2, b 0.75). */
export function rankChunks(chunks: Chunk[], query: string): number[] {
  const terms = [...new Set(words(query))];
  const docs = chunks.map((c) => words(c.text));
  const average = docs.reduce((n, d) => n + d.length, 0) / Math.max(1, docs.length);
  const frequency = new Map<string, number>();
  for (const doc of docs) for (const term of new Set(doc)) frequency.set(term, (frequency.get(term) ?? 0) + 1);
  return docs.map((doc) => {
    const counts = new Map<string, number>();
    for (const word of doc) counts.set(word, (counts.get(word) ?? 0) + 1);
    let score = 0;
    for (const term of terms) {
      const tf = counts.get(term) ?? 0;
      if (!tf) continue;
      const df = frequency.get(term) ?? 0;
      const idf = Math.log(1 + (docs.length - df + 0.5) / (df + 0.5));
      score += idf * (tf * 2.2) / (tf + 1.2 * (0.25 + 0.75 * doc.length / Math.max(1, average)));
    }
    return score;
  });
}

/**
 * The best-scoring chunks whose token counts fit `budget`, returned in page order: only passages
 * that match the question (a small model answers better from less, and sooner), or, when none
 * does, the page from its start, where pages put their summary.
 */
export function selectChunks(chunks: Chunk[], scores: number[], tokens: number[], budget: number): Chunk[] {
  // Passages that share words with the question; only when none does, the page from its start.
  const relevant = chunks.map((_, i) => i).filter((i) => scores[i] > 0);
  const candidates = relevant.length ? relevant : chunks.map((_, i) => i);
  const order = candidates.sort((a, b) => scores[b] - scores[a] || a - b);
  const chosen: number[] = [];
  let used = 0;
  for (const i of order) {
    if (used + tokens[i] > budget) continue;
    chosen.push(i);
    used += tokens[i];
  }
  return chosen.sort((a, b) => a - b).map((i) => chunks[i]);
}
