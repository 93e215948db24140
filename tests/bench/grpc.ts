/**
 * `deno task bench grpc`: the server's gRPC path to the Python ML service, against Python's own
 * gRPC client and sentence-transformers in the same run. Each figure is the median of paired rounds.
 *
 *   ping_p99_us_uds                  p99 of a unary Ping from our client over the Unix socket (10,000 calls a round)
 *   ping_p99_us_tcp                  the same over loopback TCP
 *   ping_p99_ratio_vs_python_client  ours ÷ grpcio's p99 against the same worker (goal ≤ 1.5)
 *   embed_ratio_vs_python            sentences/s through our client ÷ model.encode() directly (goal ≥ 0.9)
 *   restart_to_serving_ms            SIGKILL of a worker → SERVING again (backoff included)
 * @module
 */
import { createLogger } from "../../server/log/mod.ts";
import { LocalWorker } from "../../server/ml/mod.ts";
import { type BenchContext, percentile } from "./_harness.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const PYTHON = `${ROOT}/python-ml/.venv/bin/python`;
const CALLS = 10_000;
const ROUNDS = 5;
const TOKEN = "bench-token";
const BATCH = Array.from({ length: 256 }, (_, i) => `Sentence number ${i} says something short about item ${i % 17}.`);

const median = (values: number[]) => percentile(values, 50);
/** Both sides of the embedding comparison run torch with the same settings; idle OpenMP threads
 * sleep instead of spinning, so one process's idle pool does not slow the other's timed run. */
const TORCH_ENV = { OMP_WAIT_POLICY: "PASSIVE", TOKENIZERS_PARALLELISM: "false" };

/** A line-protocol peer process (tests/bench/_ml_python_client.py). */
function pythonPeer() {
  const child = new Deno.Command(PYTHON, {
    args: [`${ROOT}/tests/bench/_ml_python_client.py`, `${ROOT}/python-ml`],
    env: { HF_HUB_OFFLINE: "1", HF_HUB_DISABLE_PROGRESS_BARS: "1", TRANSFORMERS_VERBOSITY: "error", ...TORCH_ENV },
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    async ask<T>(command: string): Promise<T> {
      await writer.write(new TextEncoder().encode(command + "\n"));
      while (!buffer.includes("\n")) {
        const { value, done } = await lines.read();
        if (done) throw new Error("the Python peer exited");
        buffer += value;
      }
      const end = buffer.indexOf("\n");
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      return JSON.parse(line) as T;
    },
    async close() {
      await writer.close();
      await child.status;
    },
  };
}

async function started(worker: LocalWorker): Promise<LocalWorker> {
  await worker.start();
  if (worker.state !== "ready") throw new Error(`worker did not start: ${worker.status().lastError}`);
  return worker;
}

async function pingP99(worker: LocalWorker, calls: number): Promise<number> {
  const client = worker.client!;
  for (let i = 0; i < 500; i++) await client.ping();
  const times = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const began = performance.now();
    await client.ping();
    times[i] = performance.now() - began;
  }
  return percentile(Array.from(times), 99) * 1000;
}

export default async function grpcBench(ctx: BenchContext): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-bench-grpc-" });
  const log = createLogger({ level: "error", sink: () => {} });
  const common = {
    python: PYTHON,
    packageDir: `${ROOT}/python-ml`,
    token: TOKEN,
    modelCachePath: `${dataDir}/models`,
    fetchCachePath: `${dataDir}/fetch`,
    log,
    env: TORCH_ENV,
  };
  const uds = await started(new LocalWorker({ ...common, name: "uds", address: `unix:${dataDir}/ml.sock` }));
  const tcp = await started(new LocalWorker({ ...common, name: "tcp", address: "127.0.0.1:0" }));
  const peer = pythonPeer();
  try {
    const udsP99: number[] = [];
    const tcpP99: number[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const ours = await pingP99(uds, CALLS);
      const theirs = await peer.ask<{ p99_us: number; p50_us: number }>(
        `ping ${uds.client!.address} ${TOKEN} ${CALLS}`,
      );
      const overTcp = await pingP99(tcp, CALLS);
      udsP99.push(ours);
      tcpP99.push(overTcp);
      ratios.push(ours / theirs.p99_us);
      ctx.note(
        `round ${round + 1}: uds p99 ${ours.toFixed(0)} µs (python p50 ${theirs.p50_us.toFixed(0)} µs), tcp ${
          overTcp.toFixed(0)
        } µs, python ${theirs.p99_us.toFixed(0)} µs`,
      );
    }
    ctx.report("ping_p99_us_uds", median(udsP99), "us");
    ctx.report("ping_p99_us_tcp", median(tcpP99), "us");
    ctx.report("ping_p99_ratio_vs_python_client", median(ratios), "ratio");

    const model = "sentence-transformers/all-MiniLM-L6-v2";
    await uds.client!.embed({ model, inputs: BATCH.slice(0, 8) }); // load once, outside the timing
    await peer.ask(`embed ${JSON.stringify(BATCH.slice(0, 8))}`);
    const embedRatios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const began = performance.now();
      await uds.client!.embed({ model, inputs: BATCH });
      const ours = BATCH.length / ((performance.now() - began) / 1000);
      const direct = await peer.ask<{ sentences_per_s: number }>(`embed ${JSON.stringify(BATCH)}`);
      embedRatios.push(ours / direct.sentences_per_s);
      ctx.note(`embed round ${round + 1}: ours ${ours.toFixed(0)}/s, direct ${direct.sentences_per_s.toFixed(0)}/s`);
    }
    ctx.report("embed_ratio_vs_python", median(embedRatios), "ratio");

    const restarts: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the workers: five crashes of one within a minute would (rightly) open its breaker.
      const worker = round % 2 ? uds : tcp;
      const before = worker.pid;
      const began = performance.now();
      worker.signal("SIGKILL");
      while (worker.state !== "ready" || worker.pid === before) await worker.changed(30_000);
      restarts.push(performance.now() - began);
    }
    ctx.report("restart_to_serving_ms", median(restarts), "ms");
  } finally {
    await peer.close();
    await uds.stop(2_000);
    await tcp.stop(2_000);
    await Deno.remove(dataDir, { recursive: true });
  }
}
