/**
 * `deno task bench chat`: streaming chat through HTTP SSE against node-llama-cpp in-process, on the
 * generated tiny GGUF, in the same run and with the same threads, sequences and context.
 *
 *   decode_ratio_vs_direct  tokens/s streamed over HTTP ÷ tokens/s generated directly (goal ≥ 0.97)
 *   ttft_overhead_ms        time to first token over HTTP minus direct (goal ≤ 5 ms)
 *   concurrent_tokens_per_s completion tokens per second with 4 clients streaming at once
 * @module
 */
import { detectHardware } from "../../server/hardware/mod.ts";
import { chooseLlamaThreads, createLlamaRuntime, LlamaTextModel } from "../../server/inference/llama/mod.ts";
import { DEFAULT_SEQUENCES_PER_MODEL } from "../../server/inference/orchestrator/mod.ts";
import { FIXTURE_MODELS, fixtureModelCache } from "../_models.ts";
import { startServer } from "../_server.ts";
import { type BenchContext, percentile } from "./_harness.ts";

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

const median = (values: number[]) => percentile(values, 50);

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
    const ratios: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      let d: Run, h: Run;
      if (i % 2 === 0) {
        d = await direct(model);
        h = await overHttp(server.url, server.auth);
      } else {
        h = await overHttp(server.url, server.auth);
        d = await direct(model);
      }
      directRuns.push(d);
      httpRuns.push(h);
      ratios.push(h.tokensPerS / d.tokensPerS);
    }
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
  } finally {
    await model.close();
    await llama.dispose();
  }
}
