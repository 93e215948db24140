import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createHttpApp } from "../http/mod.ts";
import { webrtcRoutes } from "../http/webrtc.ts";
import { Lifecycle } from "../lifecycle/mod.ts";
import { createLogger } from "../log/mod.ts";
import { MetricsRegistry } from "../metrics/mod.ts";
import { connectWeriftClient, type Requester } from "./_werift_client.ts";
import type { FrameDetections, FrameDetector } from "./detector.ts";
import { type EncodedFrame, encodeFrame, MAX_MESSAGE_BYTES } from "./frame_protocol.ts";
import type { ResultMessage } from "./results.ts";
import { WebRtcSessions } from "./sessions.ts";

const TOKEN = "w".repeat(40);
const AUTH = { host: "127.0.0.1:8765", authorization: `Bearer ${TOKEN}` };
const quiet = createLogger({ level: "error", sink: () => {} });

/**
 * A detector that reports what it was given: the SHA-256 of the reassembled bytes as the label, so a
 * test can prove every byte of a frame crossed the lossy channel intact. Optionally held open, to
 * pile frames up behind it.
 */
class DigestDetector implements FrameDetector {
  available = true;
  seen: number[] = [];
  gate?: PromiseWithResolvers<void>;
  detect(frame: EncodedFrame, signal: AbortSignal): Promise<FrameDetections> {
    this.seen.push(frame.seq);
    const digest = createHash("sha256").update(frame.data).digest("hex");
    const answer = {
      model: "test/sha256",
      detections: [{
        label: digest,
        score: 1,
        box: { x: 0, y: 0, width: frame.width / 8192, height: frame.height / 8192 },
        keypoints: [],
      }],
    };
    if (!this.gate) return Promise.resolve(answer);
    const gate = this.gate.promise;
    return new Promise((resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      void gate.then(() => resolve(answer));
    });
  }
}

async function setup(options: { maxSessions?: number; idleTimeoutMs?: number } = {}) {
  const detector = new DigestDetector();
  const lifecycle = new Lifecycle(quiet);
  const metrics = new MetricsRegistry();
  const sessions = lifecycle.add(
    new WebRtcSessions({
      maxSessions: options.maxSessions ?? 8,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      log: quiet,
      metrics,
      detector: () => detector,
    }),
  );
  await lifecycle.startAll();
  const app = createHttpApp({
    config: {
      host: "127.0.0.1",
      allowedHosts: [],
      allowedOrigins: [],
      maxBodyBytes: 1024 * 1024,
      requestTimeoutMs: 10_000,
      mode: "webrtc",
      staticDir: "/nonexistent",
    },
    version: "test",
    log: quiet,
    lifecycle,
    metrics,
    token: TOKEN,
    routers: [webrtcRoutes({ sessions })],
    nodeModules: new URL("../../node_modules/", import.meta.url),
  });
  const request: Requester = async (path, init) => await app.request(path, init);
  /** Serves the same app on a real loopback port (for a client in another process). */
  const listen = () => {
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
    return Promise.resolve({
      url: `http://127.0.0.1:${server.addr.port}`,
      close: () => server.shutdown(),
    });
  };
  return {
    detector,
    sessions,
    request,
    listen,
    [Symbol.asyncDispose]: () => lifecycle.stopAll(5_000),
  };
}

function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(n, i + 65536)));
  return bytes;
}

/** Waits (polling the event loop, no deadline of its own) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

Deno.test("a werift client opens a session, and a multi-chunk frame comes back detected intact", async () => {
  await using server = await setup();
  const client = await connectWeriftClient(server.request, AUTH);
  try {
    const data = randomBytes(100_000); // 7 chunks
    assert.ok(client.sendFrame({ seq: 1, captureTimeMs: Date.now(), width: 1280, height: 720, format: "jpeg" }, data));
    const result = await client.next((m) => m.type === "result") as ResultMessage;
    assert.equal(result.seq, 1);
    assert.equal(result.width, 1280);
    assert.equal(result.model, "test/sha256");
    assert.equal(result.detections[0].label, sha256(data));
    const info = await (await server.request(`/v1/webrtc/sessions/${client.id}`, { headers: AUTH })).json();
    assert.equal(info.state, "connected");
    assert.equal(info.frames.received, 1);
    assert.equal(info.frames.detected, 1);
    assert.ok(info.setup_ms > 0);
    const pong = await (client.results.send(JSON.stringify({ type: "ping", id: 7 })),
      client.next((m) => m.type === "pong"));
    assert.deepEqual(pong, { type: "pong", id: 7 });
  } finally {
    await client.close();
  }
});

Deno.test("a slow detector never builds a backlog: the newest frame wins", async () => {
  await using server = await setup();
  const client = await connectWeriftClient(server.request, AUTH);
  try {
    server.detector.gate = Promise.withResolvers();
    const header = { captureTimeMs: Date.now(), width: 64, height: 64, format: "webp" as const };
    client.sendFrame({ ...header, seq: 1 }, randomBytes(500));
    // Frame 1 is in the detector; wait until the server has it, then pile up 2..20 behind it.
    await until(() => server.detector.seen.length === 1);
    for (let seq = 2; seq <= 20; seq++) client.sendFrame({ ...header, seq }, randomBytes(500));
    const last = randomBytes(600);
    client.sendFrame({ ...header, seq: 21 }, last);
    await until(() => server.sessions.get(client.id).info().frames.received === 21);
    server.detector.gate.resolve();
    const result = await client.next((m) => m.type === "result" && m.seq === 21) as ResultMessage;
    assert.equal(result.detections[0].label, sha256(last));
    assert.deepEqual(server.detector.seen, [1, 21]);
    const info = server.sessions.get(client.id).info();
    assert.equal(info.frames.superseded, 19);
    assert.equal(result.skipped, 19);
  } finally {
    await client.close();
  }
});

Deno.test("malformed and oversized frame messages are dropped and counted; the session goes on", async () => {
  await using server = await setup();
  const client = await connectWeriftClient(server.request, AUTH);
  try {
    const good = encodeFrame({ seq: 5, captureTimeMs: 1, width: 10, height: 10, format: "jpeg" }, randomBytes(40))[0];
    const badVersion = good.slice();
    badVersion[0] = 9;
    const truncated = good.slice(0, 20);
    const oversized = new Uint8Array(MAX_MESSAGE_BYTES + 1);
    oversized.set(good.subarray(0, 26));
    client.sendRaw(badVersion);
    client.sendRaw(truncated);
    client.sendRaw("not binary");
    client.sendRaw(oversized);
    client.sendRaw(good);
    const result = await client.next((m) => m.type === "result") as ResultMessage;
    assert.equal(result.seq, 5);
    const info = server.sessions.get(client.id).info();
    assert.equal(info.frames.malformed, 3);
    assert.equal(info.frames.oversized, 1);
    const metrics = await (await server.request("/metrics", { headers: AUTH })).text();
    assert.match(metrics, /tabagent_webrtc_frame_messages_rejected_total\{reason="malformed"\} 3/);
    assert.match(metrics, /tabagent_webrtc_sessions 1/);
  } finally {
    await client.close();
  }
});

async function problem(response: Response) {
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  return await response.json() as { code: string; status: number };
}

Deno.test("signaling faults: malformed SDP is 400 problem+json, an unknown session 404", async () => {
  await using server = await setup();
  const post = (body: unknown) =>
    server.request("/v1/webrtc/sessions", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  for (
    const sdp of ["hello", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", "v=0\r\nm=application 9 UDP/DTLS/SCTP garbage\r\n"]
  ) {
    const response = await post({ type: "offer", sdp });
    assert.equal(response.status, 400, sdp);
    assert.equal((await problem(response)).code, "bad_request");
  }
  assert.equal((await post({ type: "answer", sdp: "v=0" })).status, 400);
  assert.equal(server.sessions.size, 0);
  for (
    const [method, path] of [
      ["GET", "/v1/webrtc/sessions/rtc_nope"],
      ["DELETE", "/v1/webrtc/sessions/rtc_nope"],
      ["GET", "/v1/webrtc/sessions/rtc_nope/candidates"],
    ]
  ) {
    const response = await server.request(path, { method, headers: AUTH });
    assert.equal(response.status, 404, `${method} ${path}`);
    assert.equal((await problem(response)).code, "not_found");
  }
  const response = await server.request("/v1/webrtc/sessions/rtc_nope/candidates", {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/json" },
    body: JSON.stringify({ candidates: [{ candidate: "", sdpMid: "0" }] }),
  });
  assert.equal(response.status, 404);
});

Deno.test("trickle ICE: the server's candidates stream as SSE, the client's are accepted (mDNS ones skipped)", async () => {
  await using server = await setup();
  const { RTCPeerConnection } = await import("werift");
  const pc = new RTCPeerConnection({});
  try {
    pc.createDataChannel("frames", { ordered: false, maxRetransmits: 0 });
    await pc.setLocalDescription(await pc.createOffer());
    const created = await server.request("/v1/webrtc/sessions", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription!.sdp }),
    });
    assert.equal(created.status, 201);
    const answer = await created.json();
    assert.match(answer.sdp, /a=candidate:/);
    const events = await (await server.request(answer.candidates_url, { headers: AUTH })).text();
    const candidates = [...events.matchAll(/event: candidate\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]));
    assert.ok(candidates.length > 0);
    assert.ok(candidates.every((c) => c.candidate.startsWith("candidate:") && typeof c.sdpMid === "string"));
    assert.match(events, /event: end\n/);
    const trickle = await server.request(answer.candidates_url, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify({
        candidates: [
          {
            candidate: "candidate:1 1 udp 2122260223 3f0e0d2c-1111-4222-8333-944445555666.local 54321 typ host",
            sdpMid: "0",
          },
          { candidate: "", sdpMid: "0" },
        ],
      }),
    });
    assert.equal(trickle.status, 204);
    assert.equal(server.sessions.get(answer.id).info().mdns_candidates_ignored, 1);
    const bad = await server.request(answer.candidates_url, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify({ candidates: [] }),
    });
    assert.equal(bad.status, 400);
    const deleted = await server.request(`/v1/webrtc/sessions/${answer.id}`, { method: "DELETE", headers: AUTH });
    assert.equal(deleted.status, 204);
    assert.equal(server.sessions.size, 0);
  } finally {
    await pc.close();
  }
});

Deno.test("the session limit answers 429 and frees up when a session closes", async () => {
  await using server = await setup({ maxSessions: 1 });
  const first = await connectWeriftClient(server.request, AUTH);
  try {
    await connectWeriftClient(server.request, AUTH).then(
      () => assert.ok(false, "a second session was accepted"),
      (error) => assert.match(String(error), /offer refused: 429/),
    );
    const health = await (await server.request("/v1/health", { headers: AUTH })).json();
    const webrtc = health.components.find((c: { name: string }) => c.name === "webrtc");
    assert.equal(webrtc.state, "ready");
    assert.match(webrtc.detail, /1\/1 sessions/);
    await server.sessions.delete(first.id);
    const second = await connectWeriftClient(server.request, AUTH);
    await second.close();
  } finally {
    await first.close();
  }
});

Deno.test("a peer that vanishes (its process killed) has its session freed within the idle timeout", async () => {
  await using server = await setup({ idleTimeoutMs: 1_500 });
  const app = await server.listen();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./testing/vanishing_client.ts", import.meta.url).pathname, app.url, TOKEN],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the client exited before connecting: ${await child.status}`);
    out += value;
  }
  const id = out.trim();
  const session = server.sessions.get(id);
  await until(() => session.info().frames.received > 0);
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  const reason = await session.closed;
  assert.ok(reason === "idle" || reason === "peer_failed", reason);
  assert.equal(server.sessions.size, 0);
  await app.close();
});

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test({
  name: "50 sessions opened and closed leave no sessions, file descriptors, timers or memory behind",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const v8 = await import("node:v8");
    const vm = await import("node:vm");
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    await using server = await setup({ maxSessions: 5 });
    const round = async (i: number) => {
      const client = await connectWeriftClient(server.request, AUTH);
      client.sendFrame({ seq: 1, captureTimeMs: 0, width: 8, height: 8, format: "jpeg" }, randomBytes(20_000));
      await client.next((m) => m.type === "result");
      const session = server.sessions.get(client.id);
      if (i % 2 === 0) await server.sessions.delete(client.id);
      await client.close();
      await session.closed;
    };
    const batch = (from: number) => Promise.all([0, 1, 2, 3, 4].map((k) => round(from + k)));
    await batch(0); // warm-up: code paths, pools, JIT
    gc();
    const fdsBefore = openFds();
    const heapBefore = Deno.memoryUsage().heapUsed;
    // Half end with DELETE, half by the client going away.
    for (let i = 0; i < 50; i += 5) await batch(i);
    assert.equal(server.sessions.size, 0);
    gc();
    const heapGrowth = Deno.memoryUsage().heapUsed - heapBefore;
    const fdGrowth = openFds() - fdsBefore;
    assert.ok(fdGrowth <= 0, `${fdGrowth} file descriptors more than before`);
    // 50 sessions' worth of peers, channels and frames is tens of MB if any of it is kept.
    assert.ok(heapGrowth < 8 * 1024 * 1024, `heap grew by ${heapGrowth} bytes`);
  },
});
