/**
 * `deno task bench native`: the real native host process over pipes, as Chrome drives it.
 *
 *   native_roundtrip_p99_ms     p99 of a 1 KB request answered by the host (goal ≤ 1 ms)
 *   pipe_echo_p99_ms            the same frames echoed by `cat`: the pipes' own cost, same run
 *   relay_overhead_ratio        /v1/health through the native relay ÷ direct HTTP, median latency
 *   native_throughput_mb_per_s  a 16 MB body relayed host → extension (split into frames under 1 MiB)
 *   native_inbound_mb_per_s     a 16 MB frame extension → host
 *   http_throughput_mb_per_s    the same 16 MB body fetched directly, and the ratio relay ÷ direct
 *
 * Each figure is the median over ROUNDS paired rounds (relay and baseline measured back to back).
 * @module
 */
import { spawnHost, waitForServerRecord } from "../_native.ts";
import { startServer } from "../_server.ts";
import { type BenchContext, percentile } from "./_harness.ts";

const ROUNDS = 5;
const PINGS = 500;
const HEALTH_CALLS = 100;
const BIG = 16 * 1024 * 1024;

const median = (values: number[]) => percentile(values, 50);

function frame(message: unknown): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(message));
  const out = new Uint8Array(4 + body.byteLength);
  new DataView(out.buffer).setUint32(0, body.byteLength, true);
  out.set(body, 4);
  return out;
}

/** Round trips through `cat`: what any pipe-based host pays before doing any work. */
async function pipeEcho(count: number, message: Uint8Array): Promise<number[]> {
  const cat = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
  const writer = cat.stdin.getWriter();
  const reader = cat.stdout.getReader();
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const began = performance.now();
    await writer.write(message);
    let got = 0;
    while (got < message.byteLength) got += (await reader.read()).value!.byteLength;
    times.push(performance.now() - began);
  }
  await writer.close();
  reader.releaseLock();
  await cat.stdout.cancel();
  await cat.status;
  return times;
}

export default async function (ctx: BenchContext): Promise<void> {
  const staticDir = await Deno.makeTempDir({ prefix: "tabagent-bench-static-" });
  await Deno.writeFile(`${staticDir}/big.txt`, new Uint8Array(BIG).fill(0x61));
  await using server = await startServer({ args: ["--mode", "web", "--no-ml", "--static-dir", staticDir] });
  await waitForServerRecord(server.dataDir);
  await using host = spawnHost({ dataDir: server.dataDir });
  const pad = "x".repeat(1024 - JSON.stringify({ type: "ping", id: "t1", pad: "" }).length);
  const ping = { type: "ping", pad };
  // Warm up: JIT, the host's first record read.
  for (let i = 0; i < 200; i++) await host.call(ping);
  await host.call({ type: "request", method: "GET", path: "/v1/health" });

  const rounds: Record<string, number[]> = {
    roundtrip: [],
    echo: [],
    relayRatio: [],
    relayMs: [],
    directMs: [],
    out: [],
    inbound: [],
    http: [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    const times: number[] = [];
    for (let i = 0; i < PINGS; i++) {
      const began = performance.now();
      await host.call(ping);
      times.push(performance.now() - began);
    }
    rounds.roundtrip.push(percentile(times, 99));
    rounds.echo.push(percentile(await pipeEcho(PINGS, frame({ ...ping, id: "t1" })), 99));

    const relay: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < HEALTH_CALLS; i++) {
      let began = performance.now();
      await host.call({ type: "request", method: "GET", path: "/v1/health" });
      relay.push(performance.now() - began);
      began = performance.now();
      await (await fetch(`${server.url}/v1/health`)).text();
      direct.push(performance.now() - began);
    }
    rounds.relayMs.push(median(relay));
    rounds.directMs.push(median(direct));
    rounds.relayRatio.push(median(relay) / median(direct));

    let began = performance.now();
    const frames = await host.call({ type: "request", method: "GET", path: "/big.txt" });
    const relayed = frames.reduce((n, f) => n + (typeof f.data === "string" ? f.data.length : 0), 0);
    if (relayed !== BIG) throw new Error(`relayed ${relayed} bytes, expected ${BIG}`);
    rounds.out.push(BIG / 1e6 / ((performance.now() - began) / 1000));
    began = performance.now();
    await (await fetch(`${server.url}/big.txt`)).arrayBuffer();
    rounds.http.push(BIG / 1e6 / ((performance.now() - began) / 1000));
    began = performance.now();
    await host.call({ type: "ping", pad: "y".repeat(BIG) });
    rounds.inbound.push(BIG / 1e6 / ((performance.now() - began) / 1000));
    ctx.note(`round ${round + 1}/${ROUNDS} done`);
  }
  ctx.report("native_roundtrip_p99_ms", median(rounds.roundtrip), "ms");
  ctx.report("pipe_echo_p99_ms", median(rounds.echo), "ms");
  ctx.report("relay_health_median_ms", median(rounds.relayMs), "ms");
  ctx.report("direct_health_median_ms", median(rounds.directMs), "ms");
  ctx.report("relay_overhead_ratio", median(rounds.relayRatio), "ratio");
  ctx.report("native_throughput_mb_per_s", median(rounds.out), "MB/s");
  ctx.report("http_throughput_mb_per_s", median(rounds.http), "MB/s");
  ctx.report("relay_throughput_ratio_vs_http", median(rounds.out.map((v, i) => v / rounds.http[i])), "ratio");
  ctx.report("native_inbound_mb_per_s", median(rounds.inbound), "MB/s");
  await host.close();
  await Deno.remove(staticDir, { recursive: true });
}
