/**
 * `deno task bench download`: our downloader against curl on the loopback Hub stub (run as its own
 * process so it is not the bottleneck), and 8 parallel chunks against 1 stream when the server caps
 * each connection at 20 MB/s, as CDNs do.
 *
 * Figures, each the median of paired rounds (ours, then the baseline, alternating):
 * `loopback_mb_per_s` (256 MiB, verified against the Hub listing's sha256 as a pull does, and
 * renamed), `loopback_ratio_vs_curl` (ours / curl
 * fetching the same file from the same server; goal ≥ 0.9), `throttled_speedup_vs_single` (100 MB,
 * 8 chunks against 1 stream; goal ≥ 5). Also, without a goal, the CPU time one loopback download
 * costs ours (sha256 included, which curl does not compute) and curl, on Linux: on a busy machine
 * it shows where the time goes better than the wall clock.
 * @module
 */
import process from "node:process";
import { HubClient, type HubFile } from "../../server/models/hub_client.ts";
import { downloadFile } from "../../server/models/downloader.ts";
import { type BenchContext, median, pairedRounds, reportPaired } from "./_harness.ts";

const BIG_BYTES = 256 * 1024 * 1024;
const THROTTLED_BYTES = 100 * 1000 * 1000;
const CAP_BYTES_PER_S = 20 * 1000 * 1000;
const ID = "bench/files";
/**
 * A loopback round takes well under a second: more rounds steady the median on a shared machine.
 * With 11 the per-round ratios of one run spread from 0.70 to 0.99 and the median of a run moved
 * between 0.84 and 0.99 from run to run; the median of 21 moves less.
 */
const LOOPBACK_ROUNDS = 21;

/** CPU milliseconds this process's finished children used (Linux), or undefined elsewhere. */
function childrenCpuMs(): number | undefined {
  try {
    const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(fields[13]) + Number(fields[14])) * 10; // cutime + cstime, in 1/100 s
  } catch {
    return undefined;
  }
}

function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

async function writeFile(path: string, size: number): Promise<void> {
  const block = new Uint8Array(16 * 1024 * 1024);
  for (let i = 0; i < block.length; i += 65536) crypto.getRandomValues(block.subarray(i, i + 65536));
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  let left = size;
  let n = 0;
  while (left > 0) {
    block[0] = n++ & 0xff; // no two blocks alike
    const part = block.subarray(0, Math.min(block.length, left));
    let written = 0;
    while (written < part.length) written += await file.write(part.subarray(written));
    left -= part.length;
  }
  file.close();
}

async function startStub(dir: string): Promise<{ hubUrl: string; process: Deno.ChildProcess }> {
  const config = {
    repos: [{
      id: ID,
      files: [
        { path: "big.bin", diskPath: `${dir}/big.bin` },
        { path: "throttled.bin", diskPath: `${dir}/throttled.bin` },
      ],
    }],
  };
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../hub_stub/main.ts", import.meta.url).pathname, JSON.stringify(config)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("hub stub exited before listening");
    text += value;
  }
  reader.releaseLock();
  return { hubUrl: JSON.parse(text.split("\n")[0]).hubUrl, process };
}

async function timed(run: () => Promise<void>): Promise<number> {
  const began = performance.now();
  await run();
  return (performance.now() - began) / 1000;
}

async function curl(url: string, out: string): Promise<void> {
  const result = await new Deno.Command("curl", { args: ["-sS", "-L", "-o", out, url] }).output();
  if (result.code !== 0) throw new Error(`curl failed: ${new TextDecoder().decode(result.stderr)}`);
}

/** Downloads as a pull does: verified against what the Hub's listing says of the file. */
async function ours(hub: HubClient, url: string, dest: string, file: HubFile, connections: number): Promise<void> {
  await downloadFile({
    hub,
    url,
    dest,
    expected: { size: file.size, sha256: file.sha256, gitSha1: file.gitOid },
    connections,
  });
}

export default async function (ctx: BenchContext): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-bench-download-" });
  let stub: Awaited<ReturnType<typeof startStub>> | undefined;
  try {
    ctx.note("writing a 256 MiB and a 100 MB file");
    await writeFile(`${dir}/big.bin`, BIG_BYTES);
    await writeFile(`${dir}/throttled.bin`, THROTTLED_BYTES);
    stub = await startStub(dir);
    const hub = new HubClient({ endpoint: stub.hubUrl });
    const repo = await hub.repo(ID);
    const commit = repo.commit;
    const listed = (path: string) => {
      const file = repo.files.find((f) => f.path === path);
      if (!file?.sha256) throw new Error(`the stub lists no LFS sha256 for ${path}`);
      return file;
    };
    const bigUrl = hub.resolveUrl(ID, commit, "big.bin");
    const mb = BIG_BYTES / 1e6;

    const cpu = { ours: [] as number[], curl: [] as number[] };
    const curlRate = async () => {
      const before = childrenCpuMs();
      const seconds = await timed(() => curl(bigUrl, `${dir}/curl.bin`));
      const after = childrenCpuMs();
      if (before !== undefined && after !== undefined) cpu.curl.push(after - before);
      await Deno.remove(`${dir}/curl.bin`);
      return mb / seconds;
    };
    const ourRate = async () => {
      const before = ownCpuMs();
      const seconds = await timed(() => ours(hub, bigUrl, `${dir}/ours.bin`, listed("big.bin"), 8));
      cpu.ours.push(ownCpuMs() - before);
      await Deno.remove(`${dir}/ours.bin`);
      return mb / seconds;
    };
    await curlRate(); // warm the page cache and both code paths (ours keeps its hash thread warm)
    await ourRate();
    cpu.ours.length = cpu.curl.length = 0;
    const loopback = await pairedRounds({ ours: ourRate, baseline: curlRate, rounds: LOOPBACK_ROUNDS });
    reportPaired(ctx, loopback, {
      ours: "loopback_mb_per_s",
      baseline: "loopback_curl_mb_per_s",
      ratio: "loopback_ratio_vs_curl",
      unit: "MB/s",
    });
    ctx.report("loopback_cpu_ms", median(cpu.ours), "ms");
    if (cpu.curl.length) ctx.report("loopback_curl_cpu_ms", median(cpu.curl), "ms");

    const set = await fetch(`${stub.hubUrl}/_stub/faults`, {
      method: "POST",
      body: JSON.stringify({ bytesPerSecond: CAP_BYTES_PER_S }),
    });
    await set.body?.cancel();
    const throttledUrl = hub.resolveUrl(ID, commit, "throttled.bin");
    const throttled = (connections: number) => async () => {
      const seconds = await timed(() =>
        ours(hub, throttledUrl, `${dir}/t${connections}.bin`, listed("throttled.bin"), connections)
      );
      await Deno.remove(`${dir}/t${connections}.bin`);
      return THROTTLED_BYTES / 1e6 / seconds;
    };
    const speedup = await pairedRounds({ ours: throttled(8), baseline: throttled(1) });
    reportPaired(ctx, speedup, {
      ours: "throttled_mb_per_s",
      baseline: "throttled_single_mb_per_s",
      ratio: "throttled_speedup_vs_single",
      unit: "MB/s",
    });
  } finally {
    if (stub) {
      stub.process.kill("SIGTERM");
      await stub.process.status;
      await stub.process.stdout.cancel().catch(() => {}); // already released and closed on exit
    }
    await Deno.remove(dir, { recursive: true });
  }
}
