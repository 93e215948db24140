/**
 * `memory: true` against the real server, the real SmolLM2 (its own tokenizer measures the budget)
 * and real MiniLM embeddings: recall by hybrid search fills the token budget in rank order, and the
 * reply cites what went into the prompt, kept pages with their URL and title, in a stream's final
 * chunk too.
 */
import OpenAI from "openai";
import assert from "node:assert/strict";
import {
  type Citation,
  MEMORY_RECALL_LIMIT,
  MEMORY_SNIPPET_CHARS,
  MEMORY_TOKEN_BUDGET,
  memoryLine,
} from "../server/inference/pipeline/rag_chat.ts";
import { startServer } from "./_server.ts";

const MODELS = new URL("./.fixtures/models", import.meta.url).pathname;
const SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";

/** Long notes on one topic: a few of them fill the budget, so the rest must be left out. */
const SOURDOUGH = [
  "Feeding the sourdough starter",
  "Shaping a sourdough boule",
  "Baking sourdough in a Dutch oven",
  "Why my sourdough came out dense",
  "Cold proofing sourdough overnight",
  "Scoring sourdough before baking",
].map((title, i) =>
  `${title}: ` +
  `note ${i + 1} on sourdough bread. The starter is fed with equal weights of flour and water every day, kept ` +
  `in a warm corner of the kitchen, and used when it has doubled and smells pleasantly sour. The dough rests, ` +
  `is folded every half hour for two hours, shaped tightly, proofed in a basket dusted with rice flour, then ` +
  `baked hot with steam so the crust blisters and the crumb stays open and glossy. Sourdough rewards patience ` +
  `and a kitchen scale more than any special equipment or expensive flour.`
);

Deno.test("chat memory: true recalls by hybrid search within SmolLM2's token budget and cites messages and kept pages", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--model-cache-path", MODELS] });
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...server.auth, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  };
  const { json: conversation } = await api("POST", "/v1/memory/conversations", { title: "notes" });
  const appended = await api("POST", `/v1/memory/conversations/${conversation.id}/messages`, {
    messages: [
      { role: "user", content: "My train to Lyon leaves at nine from platform four." },
      ...SOURDOUGH.map((content) => ({ role: "user", content })),
    ],
  });
  assert.deepEqual(appended.status, 201, JSON.stringify(appended.json));
  const page = await api("POST", "/v1/memory/documents", {
    conversation_id: conversation.id,
    url: "https://example.org/greyhounds",
    title: "Living with a retired racing greyhound",
    text: "Retired racing greyhounds are gentle and sleep most of the day. Their coat is thin, so they need a " +
      "warm jacket on cold winter walks.",
  });
  assert.deepEqual(page.status, 201);
  const total = 1 + SOURDOUGH.length + page.json.chunks;
  for (let tries = 0;; tries++) {
    const { json: stats } = await api("GET", "/v1/memory/stats");
    if (stats.embeddings >= total && stats.pending_embeddings === 0) break;
    assert.ok(tries < 600, `not embedded: ${server.logs.filter((l) => /warn|error/.test(l)).slice(-3)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.token });
  const request = (content: string) => ({
    model: SMOLLM2,
    messages: [{ role: "user" as const, content }],
    max_tokens: 4,
    temperature: 0,
    ...({ memory: true } as Record<string, unknown>),
  });
  const ask = (content: string) => client.chat.completions.create({ ...request(content), stream: false });
  const citationsOf = (reply: unknown) => (reply as { tabagent: { citations: Citation[] } }).tabagent.citations;
  const tokens = async (lines: string[]) =>
    (await api("POST", "/v1/tokenize", { model: SMOLLM2, input: lines })).json.counts as number[];

  // a kept page is recalled by meaning and cited with its URL and title
  const dogs = "What did I read about keeping a greyhound warm in winter?";
  const read = citationsOf(await ask(dogs));
  const cited = read.find((c) => c.kind === "chunk");
  assert.ok(cited, JSON.stringify(read));
  assert.deepEqual([cited.url, cited.title], [
    "https://example.org/greyhounds",
    "Living with a retired racing greyhound",
  ]);
  assert.ok(cited.id.startsWith("chunk_") && cited.snippet.includes("warm jacket"));
  assert.deepEqual(cited.conversation_id, conversation.id);

  // the budget: the recalled lines, counted by SmolLM2's tokenizer, fill 512 tokens in rank order and
  // skip what no longer fits (the sourdough notes are ~110 tokens each)
  const bread = "How do I bake a good sourdough loaf with an open crumb?";
  const reply = await ask(bread);
  const citations = citationsOf(reply);
  const { json: ranked } = await api("POST", "/v1/memory/query", { query: bread, k: MEMORY_RECALL_LIMIT * 2 });
  const candidates: Citation[] = ranked.hits.map((h: Record<string, never>) => ({
    id: h.id,
    kind: h.kind,
    conversation_id: h.conversation_id,
    snippet: (h.text as string).slice(0, MEMORY_SNIPPET_CHARS),
    ...(h.document ? { url: h.document["url"], title: h.document["title"] } : {}),
  }));
  const costs = await tokens(candidates.map((c) => `- ${memoryLine(c)}\n`));
  const expected: string[] = [];
  let used = 0;
  let skipped = 0;
  for (const [i, candidate] of candidates.entries()) {
    if (expected.length >= MEMORY_RECALL_LIMIT) break;
    if (used + costs[i] > MEMORY_TOKEN_BUDGET) {
      skipped++;
      continue;
    }
    used += costs[i];
    expected.push(candidate.id);
  }
  assert.deepEqual(citations.map((c) => c.id), expected);
  assert.ok(skipped > 0 && used <= MEMORY_TOKEN_BUDGET && used > MEMORY_TOKEN_BUDGET / 2, `${used} tokens, ${skipped}`);
  assert.ok(citations.filter((c) => c.snippet.includes("sourdough")).length >= 3, JSON.stringify(citations));
  const cost = await tokens(citations.map((c) => `- ${memoryLine(c)}\n`));
  assert.ok(cost.reduce((a, b) => a + b, 0) <= MEMORY_TOKEN_BUDGET);

  // the memories are in the prompt: it is longer by about what they cost (each line counted alone
  // costs a token or two more than inside the joined note, so the budget errs on the safe side)
  const plain = await client.chat.completions.create({
    model: SMOLLM2,
    messages: [{ role: "user", content: bread }],
    max_tokens: 1,
  });
  const added = reply.usage!.prompt_tokens - plain.usage!.prompt_tokens;
  assert.ok(
    added >= used - 2 * citations.length && added <= used + 40,
    `${added} prompt tokens added for ${used} tokens of memories`,
  );

  // a stream carries the same citations in its final chunk
  let last: Record<string, unknown> = {};
  for await (const chunk of await client.chat.completions.create({ ...request(dogs), stream: true })) {
    if (chunk.choices[0]?.finish_reason) last = chunk as unknown as Record<string, unknown>;
  }
  assert.deepEqual((last.tabagent as { citations: Citation[] }).citations, read);
});
