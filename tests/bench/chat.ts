/**
 * `deno task bench chat`: streaming chat through HTTP SSE against node-llama-cpp in-process, on the
 * generated tiny GGUF, in the same run and on equal terms:
 *
 * - the same llama.cpp thread count on both sides: the server gets it with `--llama-threads` (the
 *   thread policy would pick by load, and on 2 cores it picked 2 for each side, whose spinning pools
 *   then fought: 104–126 tok/s instead of ~4,000 on 1 thread). It leaves one core to the HTTP client
 *   and the event loops (`TABAGENT_LLAMA_THREADS` overrides it);
 * - the same model, context and sequence pool (the server's parallelism and prompt cache), and
 *   the same fresh user message in a round on both sides (each process sees it once, so neither
 *   reuses an earlier round's prompt, and both generate the same reply, token for token);
 * - one side at a time: rounds alternate, and the in-process model is closed before the server
 *   alone is measured (4 clients, Ollama's API), so its threads never run beside the server's;
 * - each side's background work finished before the other side runs: once a reply is sent, the
 *   sequence pool evaluates it again after REFILL_DELAY_MS (sequence_pool.ts), which on 2 cores
 *   landed in the middle of the other side's next reply and slowed whichever side ran second by
 *   10–30% (rounds alternate, so the per-round ratios split into two clusters and the median
 *   fell on either);
 * - the same moments on both sides: the baseline times its first text callback and its return;
 *   the HTTP client the arrival of the bytes holding the first token and of the stream's end,
 *   before it parses them (the parse is the client's work, not the server's).
 *
 * The two sides differ in one deliberate way: while a reply generates on one llama.cpp thread the
 * server places its threads (server/inference/llama/placement.ts: for the binding's decode loop the
 * event loop on its core and the loop on the others), as raw node-llama-cpp does not, so the ratio
 * counts what that placement saves beside what HTTP costs: in alternating runs of 101–121 rounds
 * it read 1.04–1.09 placed, 0.96–1.00 not. On both sides a fifth to a half of the replies (by the
 * machine's load) run at ~6,000 tokens/s instead of ~10,000 (the tiny model lives in a core's L2
 * cache, and anything else on that core evicts it), so the per-round ratios spread widely (p25–p75
 * about 0.9–1.15): hence 101 rounds. The HTTP stream's first write holds one token (a median of 3
 * characters, checked), so timing HTTP from its first arrival credits it with no extra tokens.
 *
 *   decode_ratio_vs_direct  tokens/s streamed over HTTP ÷ tokens/s generated directly (goal ≥ 0.97)
 *   ttft_overhead_ms        time to first token over HTTP minus direct (goal ≤ 5 ms)
 *   concurrent_tokens_per_s completion tokens per second with 4 clients streaming at once
 *   ollama_api_overhead_ratio tokens/s streamed through Ollama's /api/chat ÷ through /v1/chat/completions
 *                           (goal ≥ 0.97)
 * @module
 */
import { detectHardware } from "../../server/hardware/mod.ts";
import { SERVER_V8_FLAGS } from "../../server/config/mod.ts";
import { chooseLlamaThreads, REFILL_DELAY_MS } from "../../server/inference/llama/mod.ts";
import {
  DEFAULT_PROMPT_CACHE_SEQUENCES,
  DEFAULT_SEQUENCES_PER_MODEL,
} from "../../server/inference/orchestrator/mod.ts";
import { FIXTURE_MODELS, fixtureModelCache } from "../_models.ts";
import { startServer } from "../_server.ts";
import { type BenchContext, median, pairedRounds } from "./_harness.ts";
import { mainThreadCpuMs, processCpuMs, waitIdle } from "./_proc.ts";

const TOKENS = 256;
const ROUNDS = 101;
const CLIENTS = 4;
const MESSAGES = [{ role: "user" as const, content: "Tell me a long story about the sea." }];

/**
 * Tokens of the short reply each side gives just before its measured one. Without it the side that
 * ran second in a round found its weights and code out of the CPU caches, evicted by the other
 * process, and the one that ran first did not: the per-round ratios split by order (1.05 and 0.94
 * in one run), and the median fell on either cluster. Primed, both run as a server does between
 * its own requests.
 */
const PRIMER_TOKENS = 8;

/** The primer's message: never the measured one, so it leaves nothing the measured reply can reuse. */
function primerMessages(round: number) {
  return [{ role: "user" as const, content: `Primer ${round}: say hello.` }];
}

/** A user message no earlier round sent, so neither side finds it in a cache. */
function freshMessages(round: number | string) {
  return [{ role: "user" as const, content: `Story ${round}: tell me a long story about the sea.` }];
}

/** Threads for both sides: every core the server would use on an idle machine, less one for the client. */
function benchThreads(cpu: Parameters<typeof chooseLlamaThreads>[0]): number {
  const fromEnv = Deno.env.get("TABAGENT_LLAMA_THREADS");
  if (fromEnv) return Number(fromEnv);
  return Math.max(1, chooseLlamaThreads(cpu, 0).threads - 1);
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the process `pid` has finished the work a reply leaves behind (the sequence pool's
 * re-evaluation of the reply, starting REFILL_DELAY_MS after it): it must use under 10% of a core
 * over a 10 ms window. Where /proc is missing, it waits a fixed time.
 */
async function settle(pid: number): Promise<void> {
  await delay(REFILL_DELAY_MS + 10);
  if (!await waitIdle([pid], { windowMs: 10, underMs: 1, timeoutMs: 2_000 })) await delay(100);
}

/** Main-thread and whole-process CPU time of one process over each measured reply. */
function cpuMeter() {
  const main: number[] = [];
  const whole: number[] = [];
  return {
    /** Starts a window on `pid`; the returned function ends it. */
    start(pid: number): () => void {
      const [mainBefore, wholeBefore] = [mainThreadCpuMs(pid) ?? NaN, processCpuMs(pid) ?? NaN];
      return () => {
        main.push((mainThreadCpuMs(pid) ?? NaN) - mainBefore);
        whole.push((processCpuMs(pid) ?? NaN) - wholeBefore);
      };
    },
    summary(withWhole = true): string {
      return `${median(main).toFixed(1)} ms` + (withWhole ? ` / ${median(whole).toFixed(1)} ms` : "");
    },
  };
}

interface Run {
  ttftMs: number;
  tokensPerS: number;
  tokens: number;
  /** The reply (both sides of a round must give the same one). */
  text?: string;
  /**
   * CPU time (ms) the generating process's main thread used from the first token to the end: what
   * the event loop spends per token while the model decodes, apart from the request around it.
   */
  decodeMainMs?: number;
}

/** The baseline's process (`_direct_chat.ts`): one request at a time over stdin/stdout. */
class DirectChat implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly pid: number;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.pid = child.pid;
    this.#writer = child.stdin.getWriter();
    this.#reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Starts the baseline like the server: same Deno, V8 flags and niceness (inherited). */
  static async start(options: { model: string; threads: number }): Promise<DirectChat> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `--v8-flags=${SERVER_V8_FLAGS}`,
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        new URL("./_direct_chat.ts", import.meta.url).pathname,
        options.model,
        String(options.threads),
        String(DEFAULT_SEQUENCES_PER_MODEL),
        String(DEFAULT_PROMPT_CACHE_SEQUENCES),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const direct = new DirectChat(child);
    await direct.#next();
    return direct;
  }

  async #next(): Promise<Record<string, unknown>> {
    let end: number;
    while ((end = this.#buffer.indexOf("\n")) === -1) {
      const { done, value } = await this.#reader.read();
      if (done) throw new Error(`the direct baseline exited: ${JSON.stringify(await this.#child.status)}`);
      this.#buffer += value;
    }
    const line = this.#buffer.slice(0, end);
    this.#buffer = this.#buffer.slice(end + 1);
    return JSON.parse(line);
  }

  /** One greedy reply of `TOKENS` tokens, timed inside the baseline's process. */
  async run(messages: typeof MESSAGES, maxTokens = TOKENS): Promise<Run> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify({ messages, maxTokens }) + "\n"));
    return await this.#next() as unknown as Run;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close();
    await this.#reader.cancel();
    await this.#child.status;
  }
}

async function overHttp(
  url: string,
  auth: Record<string, string>,
  options: {
    seed?: number;
    messages?: typeof MESSAGES;
    maxTokens?: number;
    /** The server's process: its main thread's CPU time is read when the first token and the end arrive. */
    serverPid?: number;
  } = {},
): Promise<Run> {
  const { seed, messages = MESSAGES, maxTokens = TOKENS, serverPid } = options;
  const began = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({
      model: FIXTURE_MODELS.chat,
      messages,
      max_tokens: maxTokens,
      temperature: seed === undefined ? 0 : 1,
      seed,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  let first = 0;
  let last = 0;
  let tokens = 0;
  let text = "";
  let buffer = "";
  let firstMainMs = NaN;
  let lastMainMs = NaN;
  for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
    // When these bytes arrived: the moments compared with the baseline's callbacks are arrivals.
    const arrived = performance.now();
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!frame.startsWith("data: ")) continue;
      if (frame === "data: [DONE]") {
        last = arrived;
        if (serverPid !== undefined) lastMainMs = mainThreadCpuMs(serverPid) ?? NaN;
        continue;
      }
      const data = JSON.parse(frame.slice(6));
      if (data.usage) tokens = data.usage.completion_tokens;
      const content = data.choices?.[0]?.delta?.content;
      if (content) {
        if (!first && serverPid !== undefined) firstMainMs = mainThreadCpuMs(serverPid) ?? NaN;
        first ||= arrived;
        text += content;
      }
    }
  }
  if (!last) throw new Error("the stream ended without data: [DONE]");
  return {
    ttftMs: first - began,
    tokensPerS: (tokens - 1) / ((last - first) / 1000),
    tokens,
    text,
    decodeMainMs: lastMainMs - firstMainMs,
  };
}

export default async function (ctx: BenchContext): Promise<void> {
  await using cache = await fixtureModelCache();
  const hardware = await detectHardware();
  const threads = benchThreads(hardware.cpu);
  ctx.note(
    `threads ${threads} on both sides, ${TOKENS} tokens a reply, ${ROUNDS} rounds, ${CLIENTS} concurrent clients`,
  );

  await using server = await startServer({
    args: ["--mode", "http", "--no-ml", "--model-cache-path", cache.path, "--llama-threads", String(threads)],
  });
  {
    await using direct = await DirectChat.start({ model: `${cache.path}/tabagent--tiny-chat/tiny-chat.gguf`, threads });
    await direct.run(freshMessages("warm-up"));
    await settle(direct.pid);
    await overHttp(server.url, server.auth, { messages: freshMessages("warm-up") }); // loads the model
    await settle(server.process.pid);
    // Paired rounds in alternating order, and the median of the per-round ratios: one llama.cpp thread
    // on a shared 2-core VM drifts by ±20% between runs, which a ratio of two separate medians shows
    // as noise; a pair measured back to back shares the drift.
    const directRuns: Run[] = [];
    const httpRuns: Run[] = [];
    const directCpu = cpuMeter();
    const httpCpu = cpuMeter();
    const clientCpu = cpuMeter();
    const { ratios } = await pairedRounds({
      rounds: ROUNDS,
      ours: async (round) => {
        await overHttp(server.url, server.auth, { messages: primerMessages(round), maxTokens: PRIMER_TOKENS });
        const stop = [httpCpu.start(server.process.pid), clientCpu.start(Deno.pid)];
        const run = await overHttp(server.url, server.auth, {
          messages: freshMessages(round),
          serverPid: server.process.pid,
        });
        for (const meter of stop) meter();
        await settle(server.process.pid);
        httpRuns.push(run);
        return run.tokensPerS;
      },
      baseline: async (round) => {
        await direct.run(primerMessages(round), PRIMER_TOKENS);
        const stop = directCpu.start(direct.pid);
        const run = await direct.run(freshMessages(round));
        stop();
        await settle(direct.pid);
        directRuns.push(run);
        return run.tokensPerS;
      },
    });
    // CPU time is less disturbed by other load than wall time: what each side's event loop spent, and
    // (all threads) with llama.cpp's; the HTTP client's event loop reads and parses the stream.
    ctx.note(
      `CPU per reply (median), main thread / whole process: server ${httpCpu.summary()}, ` +
        `direct ${directCpu.summary()}; the HTTP client's main thread ${clientCpu.summary(false)}; ` +
        `main thread from the first token to the end: server ${
          median(httpRuns.map((r) => r.decodeMainMs!)).toFixed(1)
        } ms, ` +
        `direct ${median(directRuns.map((r) => r.decodeMainMs!)).toFixed(1)} ms`,
    );
    if (httpRuns.some((r) => r.tokens !== TOKENS) || directRuns.some((r) => r.tokens !== TOKENS)) {
      ctx.note("some replies ended before max_tokens");
    }
    const differing = httpRuns.flatMap((r, i) => r.text === directRuns[i].text ? [] : [i]);
    if (differing.length) {
      const i = differing[0];
      const [a, b] = [httpRuns[i].text ?? "", directRuns[i].text ?? ""];
      let at = 0;
      while (at < a.length && a[at] === b[at]) at++;
      ctx.note(
        `the two sides gave different replies in ${differing.length} of ${ROUNDS} rounds; round ${i} from ` +
          `character ${at}: HTTP ${JSON.stringify(a.slice(at, at + 40))} (${a.length}), ` +
          `direct ${JSON.stringify(b.slice(at, at + 40))} (${b.length})`,
      );
    }
    const status = await (await fetch(`${server.url}/v1/system`, { headers: server.auth })).json();
    const served = status.inference.models.find((m: { id: string }) => m.id === FIXTURE_MODELS.chat);
    ctx.note(
      `server threads ${status.inference.backend.threads} (${status.inference.backend.threads_source}); ` +
        `prompt cache over HTTP ${JSON.stringify(served?.prompt_cache)}`,
    );
    const directRate = median(directRuns.map((r) => r.tokensPerS));
    const httpRate = median(httpRuns.map((r) => r.tokensPerS));
    const directTtft = median(directRuns.map((r) => r.ttftMs));
    const httpTtft = median(httpRuns.map((r) => r.ttftMs));
    ctx.report("direct_tokens_per_s", directRate, "tokens/s");
    ctx.report("http_tokens_per_s", httpRate, "tokens/s");
    ctx.report("decode_ratio_vs_direct", median(ratios), "ratio");
    const quartile = (values: number[], q: number, digits = 3) =>
      [...values].sort((a, b) => a - b)[Math.round(q * (values.length - 1))].toFixed(digits);
    const byOrder = (first: number) => median(ratios.filter((_, i) => i % 2 === first)).toFixed(3);
    // Whether one side's rate spreads more than the other's (it would suffer something the other does not).
    const spread = (runs: Run[]) => {
      const rates = runs.map((r) => r.tokensPerS);
      return `${quartile(rates, 0.25, 0)}–${quartile(rates, 0.75, 0)}`;
    };
    ctx.note(
      `decode ratio per round: p25 ${quartile(ratios, 0.25)}, median ${quartile(ratios, 0.5)}, ` +
        `p75 ${quartile(ratios, 0.75)}; median when HTTP ran first ${byOrder(0)}, second ${byOrder(1)}; ` +
        `tokens/s p25–p75: HTTP ${spread(httpRuns)}, direct ${spread(directRuns)}`,
    );
    ctx.report("ttft_direct_ms", directTtft, "ms");
    ctx.report("ttft_http_ms", httpTtft, "ms");
    ctx.report("ttft_overhead_ms", httpTtft - directTtft, "ms");
  } // the baseline's process exits here

  // The server alone from here on.
  const concurrentRates: number[] = [];
  for (let i = 0; i < 3; i++) {
    const began = performance.now();
    const runs = await Promise.all(
      Array.from({ length: CLIENTS }, (_, c) => overHttp(server.url, server.auth, { seed: 100 * i + c })),
    );
    const seconds = (performance.now() - began) / 1000;
    concurrentRates.push(runs.reduce((n, r) => n + r.tokens, 0) / seconds);
  }
  ctx.report("concurrent_tokens_per_s", median(concurrentRates), "tokens/s");
  await ollamaApiOverhead(ctx, server);
}

/**
 * Paired rounds for the Ollama-over-OpenAI ratio: as many as the direct-over-HTTP one, whose replies
 * switch between the same two speeds (with 31 the median read 0.93–1.00 in runs of the same code).
 */
const OLLAMA_ROUNDS = ROUNDS;

/** Streams one reply through Ollama's `/api/chat` (NDJSON), timed like {@link overHttp} (at arrival). */
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
  let last = 0;
  let tokens = 0;
  let buffer = "";
  for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
    const arrived = performance.now();
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf("\n")) !== -1) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (!line) continue;
      const data = JSON.parse(line);
      if (data.error) throw new Error(data.error);
      if (data.done) {
        tokens = data.eval_count;
        last = arrived;
      } else if (!first && data.message?.content) first = arrived;
    }
  }
  if (!last) throw new Error("the stream ended without its done line");
  return { ttftMs: first - began, tokensPerS: (tokens - 1) / ((last - first) / 1000), tokens };
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
