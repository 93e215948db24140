/**
 * `deno task bench download`: our downloader against curl on the loopback Hub stub (run as its own
 * process so it is not the bottleneck), and 8 parallel chunks against 1 stream when the server caps
 * each connection at 20 MB/s, as CDNs do.
 *
 * Figures: `loopback_mb_per_s` (1 GiB, verified and renamed), `loopback_ratio_vs_curl` (ours / curl
 * fetching the same file from the same server in the same run; goal ≥ 0.9),
 * `throttled_speedup_vs_single` (200 MB; goal ≥ 5).
 * @module
 */
import { HubClient } from "../../server/models/hub_client.ts";
import { downloadFile } from "../../server/models/downloader.ts";
import type { BenchContext } from "./_harness.ts";

const GIB = 1024 * 1024 * 1024;
const THROTTLED_BYTES = 200 * 1000 * 1000;
const CAP_BYTES_PER_S = 20 * 1000 * 1000;
const ID = "bench/files";
const ROUNDS = 2;

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

async function ours(hub: HubClient, url: string, dest: string, size: number, connections: number): Promise<void> {
  await downloadFile({ hub, url, dest, expected: { size }, connections });
}

export default async function (ctx: BenchContext): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-bench-download-" });
  let stub: Awaited<ReturnType<typeof startStub>> | undefined;
  try {
    ctx.note("writing a 1 GiB and a 200 MB file");
    await writeFile(`${dir}/big.bin`, GIB);
    await writeFile(`${dir}/throttled.bin`, THROTTLED_BYTES);
    stub = await startStub(dir);
    const hub = new HubClient({ endpoint: stub.hubUrl });
    const commit = (await hub.repo(ID)).commit;
    const bigUrl = hub.resolveUrl(ID, commit, "big.bin");
    const mb = GIB / 1e6;

    // Alternate curl and ours so neither always gets the warmer page cache; keep each one's best.
    let bestCurl = Infinity;
    let bestOurs = Infinity;
    for (let round = 0; round < ROUNDS; round++) {
      const curlSeconds = await timed(() => curl(bigUrl, `${dir}/curl.bin`));
      await Deno.remove(`${dir}/curl.bin`);
      const ourSeconds = await timed(() => ours(hub, bigUrl, `${dir}/ours.bin`, GIB, 8));
      await Deno.remove(`${dir}/ours.bin`);
      ctx.note(
        `round ${round + 1}: curl ${(mb / curlSeconds).toFixed(0)} MB/s, ours ${(mb / ourSeconds).toFixed(0)} MB/s`,
      );
      bestCurl = Math.min(bestCurl, curlSeconds);
      bestOurs = Math.min(bestOurs, ourSeconds);
    }
    ctx.report("loopback_mb_per_s", mb / bestOurs, "MB/s");
    ctx.report("loopback_curl_mb_per_s", mb / bestCurl, "MB/s");
    ctx.report("loopback_ratio_vs_curl", bestCurl / bestOurs, "ratio");

    const set = await fetch(`${stub.hubUrl}/_stub/faults`, {
      method: "POST",
      body: JSON.stringify({ bytesPerSecond: CAP_BYTES_PER_S }),
    });
    await set.body?.cancel();
    const throttledUrl = hub.resolveUrl(ID, commit, "throttled.bin");
    const single = await timed(() => ours(hub, throttledUrl, `${dir}/t1.bin`, THROTTLED_BYTES, 1));
    await Deno.remove(`${dir}/t1.bin`);
    const parallel = await timed(() => ours(hub, throttledUrl, `${dir}/t8.bin`, THROTTLED_BYTES, 8));
    await Deno.remove(`${dir}/t8.bin`);
    ctx.note(`throttled 20 MB/s per connection: 1 stream ${single.toFixed(2)} s, 8 chunks ${parallel.toFixed(2)} s`);
    ctx.report("throttled_mb_per_s", THROTTLED_BYTES / 1e6 / parallel, "MB/s");
    ctx.report("throttled_speedup_vs_single", single / parallel, "x");
  } finally {
    if (stub) {
      stub.process.kill("SIGTERM");
      await stub.process.status;
      await stub.process.stdout.cancel().catch(() => {}); // already released and closed on exit
    }
    await Deno.remove(dir, { recursive: true });
  }
}
