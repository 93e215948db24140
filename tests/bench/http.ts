/**
 * Suite `http`: latency and throughput of `GET /v1/health` on a real server process with every
 * middleware on, against a bare `Deno.serve` returning the same JSON with the same headers
 * (checked before measuring), measured in the same run.
 * Each goal is the median of paired rounds (ours, then the bare server, alternating).
 *
 * - health_p99_ratio_vs_bare (goal ≤ 1.3): p99 of one keep-alive client's sequential requests.
 * - health_rps_ratio_vs_bare (goal ≥ 0.9): 64 concurrent keep-alive clients for a fixed time.
 * @module
 */
import { startServer } from "../_server.ts";
import { type BenchContext, pairedRounds, percentile, reportPaired } from "./_harness.ts";

const SEQUENTIAL = 2_000;
const WARMUP = 1_000;
const CONCURRENCY = 64;
const LOAD_SECONDS = 2;

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

/** The comparison is fair only if both send the same body and the same headers. */
async function sameResponse(ours: Response, bare: Response): Promise<void> {
  const names = (res: Response) => [...res.headers.keys()].filter((name) => name !== "date").sort().join(", ");
  if (names(ours) !== names(bare) || (await bare.text()).length !== Number(ours.headers.get("content-length"))) {
    throw new Error(`the bare server does not answer like ours: [${names(bare)}] against [${names(ours)}]`);
  }
}

export default async function (ctx: BenchContext): Promise<void> {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const healthUrl = `${server.url}/v1/health`;
  const first = await fetch(healthUrl);
  const sample = await first.text();
  const bare = await startBare(sample);
  try {
    ctx.note(`server ${server.url}, bare ${bare.url}`);
    await sameResponse(first, await fetch(bare.url));
    await sequentialLatencies(healthUrl, WARMUP);
    await sequentialLatencies(bare.url, WARMUP);
    const p50s: number[][] = [[], []];
    const latency = await pairedRounds({
      ours: async () => {
        const times = await sequentialLatencies(healthUrl, SEQUENTIAL);
        p50s[0].push(percentile(times, 50));
        return percentile(times, 99);
      },
      baseline: async () => {
        const times = await sequentialLatencies(bare.url, SEQUENTIAL);
        p50s[1].push(percentile(times, 50));
        return percentile(times, 99);
      },
    });
    ctx.report("health_p50_ms", percentile(p50s[0], 50), "ms");
    ctx.report("bare_p50_ms", percentile(p50s[1], 50), "ms");
    reportPaired(ctx, latency, {
      ours: "health_p99_ms",
      baseline: "bare_p99_ms",
      ratio: "health_p99_ratio_vs_bare",
      unit: "ms",
    });

    await throughput(healthUrl, 1);
    await throughput(bare.url, 1);
    const rps = await pairedRounds({
      ours: () => throughput(healthUrl, LOAD_SECONDS),
      baseline: () => throughput(bare.url, LOAD_SECONDS),
    });
    reportPaired(ctx, rps, {
      ours: "health_rps",
      baseline: "bare_rps",
      ratio: "health_rps_ratio_vs_bare",
      unit: "req/s",
    });
  } finally {
    await bare.stop();
  }
}
