import { deepEqual, equal, match, ok } from "node:assert/strict";
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
  return {
    detector,
    sessions,
    request,
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
    ok(client.sendFrame({ seq: 1, captureTimeMs: Date.now(), width: 1280, height: 720, format: "jpeg" }, data));
    const result = await client.next((m) => m.type === "result") as ResultMessage;
    equal(result.seq, 1);
    equal(result.width, 1280);
    equal(result.model, "test/sha256");
    equal(result.detections[0].label, sha256(data));
    const info = await (await server.request(`/v1/webrtc/sessions/${client.id}`, { headers: AUTH })).json();
    equal(info.state, "connected");
    equal(info.frames.received, 1);
    equal(info.frames.detected, 1);
    ok(info.setup_ms > 0);
    const pong = await (client.results.send(JSON.stringify({ type: "ping", id: 7 })),
      client.next((m) => m.type === "pong"));
    deepEqual(pong, { type: "pong", id: 7 });
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
    equal(result.detections[0].label, sha256(last));
    deepEqual(server.detector.seen, [1, 21]);
    const info = server.sessions.get(client.id).info();
    equal(info.frames.superseded, 19);
    equal(result.skipped, 19);
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
    equal(result.seq, 5);
    const info = server.sessions.get(client.id).info();
    equal(info.frames.malformed, 3);
    equal(info.frames.oversized, 1);
    const metrics = await (await server.request("/metrics", { headers: AUTH })).text();
    match(metrics, /tabagent_webrtc_frame_messages_rejected_total\{reason="malformed"\} 3/);
    match(metrics, /tabagent_webrtc_sessions 1/);
  } finally {
    await client.close();
  }
});
