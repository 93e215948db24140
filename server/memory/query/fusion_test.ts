import assert from "node:assert/strict";
import { blendScore, fuseRanks, maximalMarginalRelevance, ndcgAtK, reciprocalRankFusion } from "./fusion.ts";

Deno.test("RRF: an item in both lists beats one that tops only one; weights tilt the order", () => {
  const fused = reciprocalRankFusion([{ ids: ["a", "b", "c"], weight: 1 }, { ids: ["b", "d"], weight: 1 }]);
  assert.deepEqual(fused[0].id, "b");
  const keywordHeavy = reciprocalRankFusion([{ ids: ["a"], weight: 3 }, { ids: ["d"], weight: 1 }]);
  assert.deepEqual(keywordHeavy.map((x) => x.id), ["a", "d"]);
  assert.deepEqual(reciprocalRankFusion([{ ids: ["a"], weight: 0 }]), []);
});

Deno.test("ranking: recency and importance lift an older, less relevant item only as far as weighted", () => {
  const day = 86_400_000;
  const weights = { recency: 0.3, importance: 0.2, halfLifeDays: 7 };
  const fresh = blendScore(0.5, 1, 0, 1, weights);
  const stale = blendScore(1, 1, 70 * day, 0, weights);
  assert.ok(fresh > stale);
  assert.deepEqual(blendScore(1, 1, 0, 0, { recency: 0, importance: 0, halfLifeDays: 7 }), 1);
});

Deno.test("MMR: a near-duplicate of the first pick yields to a different item", () => {
  const v = (...x: number[]) => Float32Array.from(x);
  const picked = maximalMarginalRelevance(
    [
      { id: "a", score: 1, vector: v(1, 0) },
      { id: "a-copy", score: 0.99, vector: v(1, 0.01) },
      { id: "b", score: 0.8, vector: v(0, 1) },
    ],
    2,
    0.5,
  );
  assert.deepEqual(picked.map((p) => p.id), ["a", "b"]);
  const pure = maximalMarginalRelevance([{ id: "a", score: 1 }, { id: "b", score: 0.5 }], 2, 1);
  assert.deepEqual(pure.map((p) => p.id), ["a", "b"]);
});

Deno.test("nDCG@k: 1 for the ideal order, less for a worse one", () => {
  const relevance = new Map([["a", 2], ["b", 1]]);
  assert.deepEqual(ndcgAtK(["a", "b", "x"], relevance, 10), 1);
  assert.ok(ndcgAtK(["x", "b", "a"], relevance, 10) < 1);
  assert.deepEqual(ndcgAtK(["x"], relevance, 10), 0);
});

Deno.test("keyword expression: most of the telling words, spelled out for FTS5", async () => {
  const { keywordExpression, keywordTerms, minimumShouldMatch } = await import("./engine.ts");
  assert.deepEqual(keywordTerms("What is my exercise routine?"), ["exercise", "routine"]);
  assert.deepEqual(keywordTerms("what is it"), ["what", "is", "it"]);
  assert.deepEqual([1, 2, 3, 4].map(minimumShouldMatch), [1, 2, 2, 3]);
  assert.deepEqual(keywordExpression(["a"], 1), { match: '"a"', check: false });
  assert.deepEqual(keywordExpression(["a", "b"], 2), { match: '"a" "b"', check: false });
  assert.deepEqual(keywordExpression(["a", "b", "c"], 2), {
    match: '("a" "b") OR ("a" "c") OR ("b" "c")',
    check: false,
  });
  const many = Array.from({ length: 12 }, (_, i) => `w${i}`);
  assert.deepEqual(keywordExpression(many, 7)?.check, true);
});

Deno.test("fuseRanks: the scores and order of reciprocalRankFusion, for short lists and long ones", () => {
  let seed = 1;
  const draw = (n: number) => (seed = (seed * 16807) % 2147483647) % n;
  for (const [length, span] of [[5, 8], [50, 80], [400, 500]]) {
    const lists = [
      { ids: Array.from({ length }, () => 2 ** 40 + draw(span)), weight: 1 },
      { ids: Array.from({ length }, () => 2 ** 40 + draw(span)), weight: 0.5 },
      { ids: [2 ** 40], weight: 0 },
    ];
    const expected = reciprocalRankFusion(lists);
    const { ids, scores, order } = fuseRanks(lists);
    assert.deepEqual(Array.from(order, (at) => ({ id: ids[at], score: scores[at] })), expected);
  }
  assert.deepEqual(fuseRanks([{ ids: [3], weight: 0 }]).order.length, 0);
});
