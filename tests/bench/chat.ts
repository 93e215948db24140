/**
 * `deno task bench chat`: streaming chat through HTTP SSE against node-llama-cpp in-process, on the
 * generated tiny GGUF, in the same run and with the same threads, sequences and context.
 *
 *   decode_ratio_vs_direct  tokens/s streamed over HTTP ÷ tokens/s generated directly (goal ≥ 0.97)
 *   ttft_overhead_ms        time to first token over HTTP minus direct (goal ≤ 5 ms)
 *   concurrent_tokens_per_s completion tokens per second with 4 clients streaming at once
 *   ollama_api_overhead_ratio tokens/s streamed through Ollama's /api/chat ÷ through /v1/chat/completions
 *                           (goal ≥ 0.97)
 * @module
 */
import { detectHardware } from "../../server/hardware/mod.ts";
import { chooseLlamaThreads, createLlamaRuntime, LlamaTextModel } from "../../server/inference/llama/mod.ts";
import { DEFAULT_SEQUENCES_PER_MODEL } from "../../server/inference/orchestrator/mod.ts";
import { FIXTURE_MODELS, fixtureModelCache } from "../_models.ts";
import { startServer } from "../_server.ts";
import { type BenchContext, median, pairedRounds } from "./_harness.ts";

const TOKENS = 256;
const ROUNDS = 31;
const CLIENTS = 4;
const MESSAGES = [{ role: "user" as const, content: "Tell me a long story about the sea." }];

interface Run {
  ttftMs: number;
  tokensPerS: number;
  tokens: number;
}

async function direct(model: LlamaTextModel): Promise<Run> {
  const began = performance.now();
  let first = 0;
  const prepared = await model.prepareChat({ messages: MESSAGES, maxTokens: TOKENS, temperature: 0 });
  const result = await model.generateChat(prepared, {
    onText: () => {
      first ||= performance.now();
    },
  });
  const end = performance.now();
  return {
    ttftMs: first - began,
    tokensPerS: (result.completionTokens - 1) / ((end - first) / 1000),
    tokens: result.completionTokens,
  };
}

async function overHttp(url: string, auth: Record<string, string>, seed?: number): Promise<Run> {
  const began = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({
      model: FIXTURE_MODELS.chat,
      messages: MESSAGES,
      max_tokens: TOKENS,
      temperature: seed === undefined ? 0 : 1,
      seed,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  let first = 0;
  let tokens = 0;
  let buffer = "";
  for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!frame.startsWith("data: ") || frame === "data: [DONE]") continue;
      const data = JSON.parse(frame.slice(6));
      if (data.usage) tokens = data.usage.completion_tokens;
      if (!first && data.choices?.[0]?.delta?.content) first = performance.now();
    }
  }
  const end = performance.now();
  return { ttftMs: first - began, tokensPerS: (tokens - 1) / ((end - first) / 1000), tokens };
}

export default async function (ctx: BenchContext): Promise<void> {
  await using cache = await fixtureModelCache();
  const hardware = await detectHardware();
  const threads = chooseLlamaThreads(hardware.cpu).threads; // what the server chooses
  ctx.note(`threads ${threads}, ${TOKENS} tokens a reply, ${ROUNDS} rounds, ${CLIENTS} concurrent clients`);

  const llama = await createLlamaRuntime({ threads, gpu: hardware.recommended.llamaGpu });
  const model = await LlamaTextModel.load(llama, `${cache.path}/tabagent--tiny-chat/tiny-chat.gguf`, {
    sequences: DEFAULT_SEQUENCES_PER_MODEL,
    threads,
  });
  await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--model-cache-path", cache.path] });
  try {
    await direct(model);
    await overHttp(server.url, server.auth); // loads the model in the server
    // Paired rounds in alternating order, and the median of the per-round ratios: one llama.cpp thread
    // on a shared 2-core VM drifts by ±20% between runs, which a ratio of two separate medians shows
    // as noise; a pair measured back to back shares the drift.
    const directRuns: Run[] = [];
    const httpRuns: Run[] = [];
    const { ratios } = await pairedRounds({
      rounds: ROUNDS,
      ours: async () => {
        const run = await overHttp(server.url, server.auth);
        httpRuns.push(run);
        return run.tokensPerS;
      },
      baseline: async () => {
        const run = await direct(model);
        directRuns.push(run);
        return run.tokensPerS;
      },
    });
    if (httpRuns.some((r) => r.tokens !== TOKENS) || directRuns.some((r) => r.tokens !== TOKENS)) {
      ctx.note("some replies ended before max_tokens");
    }
    const directRate = median(directRuns.map((r) => r.tokensPerS));
    const httpRate = median(httpRuns.map((r) => r.tokensPerS));
    const directTtft = median(directRuns.map((r) => r.ttftMs));
    const httpTtft = median(httpRuns.map((r) => r.ttftMs));
    ctx.report("direct_tokens_per_s", directRate, "tokens/s");
    ctx.report("http_tokens_per_s", httpRate, "tokens/s");
    ctx.report("decode_ratio_vs_direct", median(ratios), "ratio");
    ctx.report("ttft_direct_ms", directTtft, "ms");
    ctx.report("ttft_http_ms", httpTtft, "ms");
    ctx.report("ttft_overhead_ms", httpTtft - directTtft, "ms");

    const concurrentRates: number[] = [];
    for (let i = 0; i < 3; i++) {
      const began = performance.now();
      const runs = await Promise.all(
        Array.from({ length: CLIENTS }, (_, c) => overHttp(server.url, server.auth, 100 * i + c)),
      );
      const seconds = (performance.now() - began) / 1000;
      concurrentRates.push(runs.reduce((n, r) => n + r.tokens, 0) / seconds);
    }
    ctx.report("concurrent_tokens_per_s", median(concurrentRates), "tokens/s");
    await ollamaApiOverhead(ctx, server);
  } finally {
    await model.close();
    await llama.dispose();
  }
}

/** Paired rounds for the Ollama-over-OpenAI ratio (as many as the direct-over-HTTP one: the drift is the same). */
const OLLAMA_ROUNDS = 31;

/** Streams one reply through Ollama's `/api/chat` (NDJSON), timed like {@link overHttp}. */
async function overOllama(url: string, auth: Record<string, string>): Promise<Run> {
  const began = performance.now();
  const response = await fetch(`${url}/api/chat`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({
      model: FIXTURE_MODELS.chat,
      messages: MESSAGES,
      options: { num_predict: TOKENS, temperature: 0 },
    }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  let first = 0;
  let tokens = 0;
  let buffer = "";
  for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf("\n")) !== -1) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (!line) continue;
      const data = JSON.parse(line);
      if (data.error) throw new Error(data.error);
      if (data.done) tokens = data.eval_count;
      else if (!first && data.message?.content) first = performance.now();
    }
  }
  const end = performance.now();
  return { ttftMs: first - began, tokensPerS: (tokens - 1) / ((end - first) / 1000), tokens };
}

/**
 * `ollama_api_overhead_ratio`: decode tokens/s through Ollama's `/api/chat` over the same reply
 * through `/v1/chat/completions`, on one server, as the median of paired rounds in alternating order.
 */
export async function ollamaApiOverhead(
  ctx: BenchContext,
  server: { url: string; auth: Record<string, string> },
): Promise<void> {
  await overOllama(server.url, server.auth);
  const ollamaRuns: Run[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < OLLAMA_ROUNDS; i++) {
    let openai: Run, ollama: Run;
    if (i % 2 === 0) {
      openai = await overHttp(server.url, server.auth);
      ollama = await overOllama(server.url, server.auth);
    } else {
      ollama = await overOllama(server.url, server.auth);
      openai = await overHttp(server.url, server.auth);
    }
    ollamaRuns.push(ollama);
    ratios.push(ollama.tokensPerS / openai.tokensPerS);
  }
  if (ollamaRuns.some((r) => r.tokens !== TOKENS)) ctx.note("some Ollama replies ended before num_predict");
  ctx.report("ollama_tokens_per_s", median(ollamaRuns.map((r) => r.tokensPerS)), "tokens/s");
  ctx.report("ollama_api_overhead_ratio", median(ratios), "ratio");
}
