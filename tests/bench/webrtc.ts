/**
 * `deno task bench webrtc`: tab video over WebRTC on loopback, against the real server (`--mode
 * webrtc` in its own process) and a werift client, with baselines measured in the same run.
 *
 *   setup_p50_ms / setup_p99_ms  offer created and posted → both data channels open (design target < 100 ms)
 *   setup_ratio_vs_bare_werift   median over paired rounds of (server setup ÷ two bare werift peers'
 *                                setup, same channels, in one process); goal ≤ 1.2
 *   frames_per_s_720p            1280×720 JPEG frames the server received and reassembled per second,
 *                                sent as fast as the channel's backpressure allows (goal ≥ 30)
 *   frame_to_result_p99_ms       frame sent → its detection back on the results channel (the real
 *                                MediaPipe face detection in the Python ML service)
 *   frame_overhead_ms            median over paired rounds of (WebRTC p50 − the same detection called
 *                                directly over gRPC p50); goal ≤ 20 ms
 * @module
 */
import { RTCPeerConnection } from "werift";
import { MlClient } from "../../server/ml/mod.ts";
import {
  connectWeriftClient,
  type SetupPhases,
  watchPhases,
  type WeriftClient,
} from "../../server/webrtc/_werift_client.ts";
import { FRAMES_CHANNEL, RESULTS_CHANNEL } from "../../server/webrtc/mod.ts";
import { astronautJpeg720p } from "../_astronaut.ts";
import { startServer, type TestServer } from "../_server.ts";
import { type BenchContext, percentile } from "./_harness.ts";

const SETUP_ROUNDS = 21;
const FPS_ROUNDS = 5;
const FPS_WINDOW_MS = 2_000;
const DETECT_ROUNDS = 5;
const DETECT_FRAMES = 20;
const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const PYTHON = `${ROOT}/python-ml/.venv/bin/python`;

/**
 * One Python ML worker for the whole run: the server reaches it as a remote worker, and the baseline
 * calls the same worker's MediaPipe detection directly over gRPC, so both paths share one model.
 */
async function startWorker(token: string) {
  const process = new Deno.Command(PYTHON, {
    args: ["-m", "tabagent_ml", "--address", "127.0.0.1:0", "--lifeline", "stdin"],
    cwd: `${ROOT}/python-ml`,
    env: { TABAGENT_ML_TOKEN: token, PYTHONPATH: `${ROOT}/python-ml` },
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const reader = process.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes('"listening"')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the ML worker exited before listening:\n${text}`);
    text += value;
  }
  const address = /"address": "([^"]+)"/.exec(text)![1];
  (async () => {
    while (!(await reader.read()).done) { /* drain the worker's log */ }
  })();
  return {
    address,
    async [Symbol.asyncDispose]() {
      await process.stdin.close(); // the lifeline: the worker exits when stdin closes
      await process.status;
    },
  };
}

/** The same detection as the WebRTC path, called directly over gRPC. */
async function directDetect(client: MlClient, jpeg: Uint8Array, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const began = performance.now();
    const result = await client.detect({ image: jpeg, tasks: ["faces"] });
    if (result.detections.length !== 1) throw new Error(`direct: ${result.detections.length} faces`);
    times.push(performance.now() - began);
  }
  return times;
}

function median(values: number[]): number {
  return percentile(values, 50);
}

/** Median end time of each setup step over `runs`, for the notes: where the setup time goes. */
function phaseNote(runs: SetupPhases[]): string {
  const steps = ["answer", "ice", "dtls", "open"] as const;
  return steps.map((step) => {
    const times = runs.map((run) => run[step]).filter((t): t is number => t !== undefined);
    return `${step} ${times.length ? median(times).toFixed(1) : "–"}`;
  }).join(" ms, ") + " ms";
}

/** Two werift peers in this process, with the same two channels the client opens. */
async function bareSetup(phases: SetupPhases[] = []): Promise<number> {
  const a = new RTCPeerConnection({});
  const b = new RTCPeerConnection({});
  a.onIceCandidate.subscribe((candidate) => candidate && b.addIceCandidate(candidate));
  b.onIceCandidate.subscribe((candidate) => candidate && a.addIceCandidate(candidate));
  const frames = a.createDataChannel(FRAMES_CHANNEL, { ordered: false, maxRetransmits: 0 });
  const results = a.createDataChannel(RESULTS_CHANNEL);
  const open = (c: typeof frames) => new Promise<void>((resolve) => c.onopen = () => resolve());
  const opened = Promise.all([open(frames), open(results)]);
  const began = performance.now();
  const phase: SetupPhases = {};
  watchPhases(a, began, phase);
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription!);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription!);
  phase.answer = performance.now() - began;
  await opened;
  const ms = performance.now() - began;
  phases.push({ ...phase, open: ms });
  await a.close();
  await b.close();
  return ms;
}

async function serverSetup(server: TestServer, phases: SetupPhases[] = []): Promise<number> {
  const client = await connectWeriftClient((path, init) => fetch(`${server.url}${path}`, init), server.auth);
  const ms = client.setupMs;
  phases.push(client.phases);
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

async function frameToResult(client: WeriftClient, jpeg: Uint8Array, seq: { n: number }): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < DETECT_FRAMES; i++) {
    const n = ++seq.n;
    const began = performance.now();
    client.sendFrame({ seq: n, captureTimeMs: Date.now(), width: 1280, height: 720, format: "jpeg" }, jpeg);
    const message = await client.next((m) => (m.type === "result" || m.type === "error") && m.seq === n);
    if (message.type === "error") throw new Error(`frame ${n}: ${message.code} ${message.message}`);
    if (message.type === "result" && message.detections.length !== 1) throw new Error(`frame ${n}: no face`);
    times.push(performance.now() - began);
  }
  return times;
}

export default async function webrtc(ctx: BenchContext): Promise<void> {
  const jpeg = await Deno.readFile(await astronautJpeg720p());
  const token = `bench-${crypto.randomUUID()}`;
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-bench-" });
  await using _dataDir = { [Symbol.asyncDispose]: () => Deno.remove(dataDir, { recursive: true }) };
  await Deno.writeTextFile(`${dataDir}/api_token`, token, { mode: 0o600 });
  await using worker = await startWorker(token);
  await using server = await startServer({ dataDir, args: ["--mode", "webrtc", "--ml-worker", worker.address] });
  ctx.note(`server ${server.url}; JPEG ${jpeg.byteLength} bytes`);

  // Warm both paths (JIT, the server's certificate is made at start) before measuring.
  await bareSetup();
  await serverSetup(server);
  const setups: number[] = [];
  const ratios: number[] = [];
  const bares: number[] = [];
  const barePhases: SetupPhases[] = [];
  const ourPhases: SetupPhases[] = [];
  for (let round = 0; round < SETUP_ROUNDS; round++) {
    const bare = await bareSetup(barePhases);
    const ours = await serverSetup(server, ourPhases);
    bares.push(bare);
    setups.push(ours);
    ratios.push(ours / bare);
  }
  ctx.note(`bare werift setup p50 ${median(bares).toFixed(1)} ms`);
  // werift's DTLS client waits a fixed 100 ms before its ClientHello (transport/dtls.ts): most of
  // both setups. The server is connected on the client's first check, so its wait overlaps the
  // client's ICE; a bare pair waits after its ICE.
  ctx.note(`setup steps, median end from offer: server ${phaseNote(ourPhases)}; bare ${phaseNote(barePhases)}`);
  ctx.report("setup_p50_ms", median(setups), "ms");
  ctx.report("setup_p99_ms", percentile(setups, 99), "ms");
  ctx.report("bare_werift_setup_p50_ms", median(bares), "ms");
  ctx.report("setup_ratio_vs_bare_werift", median(ratios), "ratio");

  const client = await connectWeriftClient((path, init) => fetch(`${server.url}${path}`, init), server.auth);
  const seq = { n: 0 };
  const fps: number[] = [];
  for (let round = 0; round < FPS_ROUNDS; round++) fps.push(await framesPerSecond(server, client, jpeg, seq));
  ctx.report("frames_per_s_720p", median(fps), "frames/s");

  const direct = new MlClient({ address: worker.address, token, name: "bench-direct" });
  await directDetect(direct, jpeg, 3); // warm the model
  await frameToResult(client, jpeg, seq);
  const p99s: number[] = [];
  const overheads: number[] = [];
  for (let round = 0; round < DETECT_ROUNDS; round++) {
    const baseline = await directDetect(direct, jpeg, DETECT_FRAMES);
    const overWebRtc = await frameToResult(client, jpeg, seq);
    p99s.push(percentile(overWebRtc, 99));
    overheads.push(median(overWebRtc) - median(baseline));
    ctx.note(
      `round ${round}: WebRTC p50 ${median(overWebRtc).toFixed(1)} ms, gRPC p50 ${median(baseline).toFixed(1)} ms`,
    );
  }
  direct.close();
  ctx.report("frame_to_result_p99_ms", median(p99s), "ms");
  ctx.report("frame_overhead_ms", median(overheads), "ms");
  await client.close();
}
