/**
 * Suite `http`: latency and throughput of `GET /v1/health` on a real server process with every
 * middleware on, against a bare `Deno.serve` returning the same JSON, measured in the same run.
 *
 * - health_p50_ms / health_p99_ms: one client, keep-alive, 5,000 requests after a warm-up.
 * - health_rps / bare_rps / health_rps_ratio_vs_bare: 64 concurrent keep-alive clients for a fixed time.
 * @module
 */
import { startServer } from "../_server.ts";
import { type BenchContext, percentile } from "./_harness.ts";

const SEQUENTIAL = 5_000;
const WARMUP = 1_000;
const CONCURRENCY = 64;
const LOAD_SECONDS = 5;

async function sequentialLatencies(url: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const began = performance.now();
    const res = await fetch(url);
    await res.arrayBuffer();
    times.push(performance.now() - began);
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  }
  return times;
}

async function throughput(url: string, seconds: number): Promise<number> {
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
      done++;
    }
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return done / ((performance.now() - began) / 1000);
}

async function startBare(body: string): Promise<{ url: string; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_bare_server.ts", import.meta.url).pathname, body],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return {
    url: value!.trim(),
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

export default async function (ctx: BenchContext): Promise<void> {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const healthUrl = `${server.url}/v1/health`;
  const sample = await (await fetch(healthUrl)).text();
  const bare = await startBare(sample);
  try {
    ctx.note(`server ${server.url}, bare ${bare.url}`);
    await sequentialLatencies(healthUrl, WARMUP);
    await sequentialLatencies(bare.url, WARMUP);
    const ours = await sequentialLatencies(healthUrl, SEQUENTIAL);
    const base = await sequentialLatencies(bare.url, SEQUENTIAL);
    ctx.report("health_p50_ms", percentile(ours, 50), "ms");
    ctx.report("health_p99_ms", percentile(ours, 99), "ms");
    ctx.report("bare_p50_ms", percentile(base, 50), "ms");
    ctx.report("bare_p99_ms", percentile(base, 99), "ms");

    await throughput(healthUrl, 1);
    await throughput(bare.url, 1);
    const ourRps = await throughput(healthUrl, LOAD_SECONDS);
    const bareRps = await throughput(bare.url, LOAD_SECONDS);
    ctx.report("health_rps", ourRps, "req/s");
    ctx.report("bare_rps", bareRps, "req/s");
    ctx.report("health_rps_ratio_vs_bare", ourRps / bareRps, "ratio");
  } finally {
    await bare.stop();
  }
}
