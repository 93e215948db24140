/**
 * Suite `http`: latency and throughput of `GET /v1/health` on a real server process with every
 * middleware on, against a bare `Deno.serve` returning the same JSON with the same headers
 * (checked before measuring), measured in the same run.
 *
 * Fairness: both servers run in their own process with the same V8 flags (the server's
 * {@link SERVER_V8_FLAGS}), are warmed alike, and are driven by the same client. Within each of
 * {@link ROUNDS} rounds the two sides are measured in alternating slices of {@link SLICE}
 * requests (ours, bare, bare, ours, …), so both meet the same machine: on a shared VM a p99 moves
 * by 2× between seconds, and whole-round pairs compared one second against another. Each side's
 * p99 is taken over {@link SLICES}×{@link SLICE} samples of its round (the 50th worst), not over
 * a couple of thousand where it is the 20th worst and a single hiccup moves it.
 *
 * - health_p99_ratio_vs_bare (goal ≤ 1.3): p99 of one keep-alive client's sequential requests,
 *   median of the rounds' ratios.
 * - health_rps_ratio_vs_bare (goal ≥ 0.9): 64 concurrent keep-alive clients for a fixed time.
 * - health_cpu_us_per_request, bare_cpu_us_per_request: CPU time of each server's main thread per
 *   sequential request (Linux only). Unlike latency, it barely moves when other work shares the
 *   machine, so it shows our own cost even on a busy one.
 * @module
 */
import { SERVER_V8_FLAGS } from "../../server/config/mod.ts";
import { startServer } from "../_server.ts";
import { type BenchContext, median, type PairedResult, pairedRounds, percentile, reportPaired } from "./_harness.ts";
import { mainThreadCpuMs } from "./_proc.ts";

/** Paired rounds of the latency goal. */
const ROUNDS = 7;
/** Slices per side per round, alternating sides. */
const SLICES = 10;
/** Sequential requests per slice. */
const SLICE = 500;
const WARMUP = 2_000;
const CONCURRENCY = 64;
const LOAD_SECONDS = 2;

async function sequentialLatencies(url: string, count: number, into: number[] = []): Promise<number[]> {
  for (let i = 0; i < count; i++) {
    const began = performance.now();
    const res = await fetch(url);
    await res.arrayBuffer();
    into.push(performance.now() - began);
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  }
  return into;
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

/** The V8 flags both servers run with (`TABAGENT_TEST_V8_FLAGS` overrides them for both, as for tests/_server.ts). */
function v8Flags(): string {
  return Deno.env.get("TABAGENT_TEST_V8_FLAGS") ?? SERVER_V8_FLAGS;
}

async function startBare(body: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--v8-flags=${v8Flags()}`, new URL("./_bare_server.ts", import.meta.url).pathname, body],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return {
    url: value!.trim(),
    pid: child.pid,
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

interface Side {
  url: string;
  pid: number;
  times: number[];
  cpuMs: number;
}

/** One round: {@link SLICES} slices per side, alternating which goes first; fills each side's `times` and adds to its `cpuMs`. */
async function interleavedRound(sides: [Side, Side]): Promise<void> {
  for (const side of sides) side.times = [];
  for (let slice = 0; slice < SLICES; slice++) {
    for (const side of slice % 2 === 0 ? sides : [sides[1], sides[0]]) {
      const cpuBefore = mainThreadCpuMs(side.pid);
      await sequentialLatencies(side.url, SLICE, side.times);
      const cpuAfter = mainThreadCpuMs(side.pid);
      if (cpuBefore !== null && cpuAfter !== null) side.cpuMs += cpuAfter - cpuBefore;
      else side.cpuMs = NaN;
    }
  }
}

export default async function (ctx: BenchContext): Promise<void> {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const healthUrl = `${server.url}/v1/health`;
  const first = await fetch(healthUrl);
  const sample = await first.text();
  const bare = await startBare(sample);
  try {
    ctx.note(`server ${server.url}, bare ${bare.url}, both with --v8-flags=${v8Flags()}`);
    await sameResponse(first, await fetch(bare.url));
    await sequentialLatencies(healthUrl, WARMUP);
    await sequentialLatencies(bare.url, WARMUP);
    const ours: Side = { url: healthUrl, pid: server.process.pid, times: [], cpuMs: 0 };
    const baseline: Side = { url: bare.url, pid: bare.pid, times: [], cpuMs: 0 };
    const latency: PairedResult = { ours: [], baseline: [], ratios: [] };
    const p50s: number[][] = [[], []];
    for (let round = 0; round < ROUNDS; round++) {
      await interleavedRound(round % 2 === 0 ? [ours, baseline] : [baseline, ours]);
      const [p99, bareP99] = [percentile(ours.times, 99), percentile(baseline.times, 99)];
      latency.ours.push(p99);
      latency.baseline.push(bareP99);
      latency.ratios.push(p99 / bareP99);
      p50s[0].push(percentile(ours.times, 50));
      p50s[1].push(percentile(baseline.times, 50));
    }
    ctx.report("health_p50_ms", median(p50s[0]), "ms");
    ctx.report("bare_p50_ms", median(p50s[1]), "ms");
    reportPaired(ctx, latency, {
      ours: "health_p99_ms",
      baseline: "bare_p99_ms",
      ratio: "health_p99_ratio_vs_bare",
      unit: "ms",
    });
    const requests = ROUNDS * SLICES * SLICE;
    if (Number.isFinite(ours.cpuMs) && Number.isFinite(baseline.cpuMs)) {
      ctx.report("health_cpu_us_per_request", (ours.cpuMs * 1000) / requests, "us");
      ctx.report("bare_cpu_us_per_request", (baseline.cpuMs * 1000) / requests, "us");
    }

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
