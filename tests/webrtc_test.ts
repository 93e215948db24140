/**
 * End to end: `tabagent serve --mode webrtc` in its own process, a werift client over real loopback
 * HTTP and UDP, the session's state in /v1/health, /metrics and the sessions API.
 */
import assert from "node:assert/strict";
import { connectWeriftClient } from "../server/webrtc/_werift_client.ts";
import { startServer } from "./_server.ts";

Deno.test("--mode webrtc serves signaling; a session shows in health and metrics and is freed on DELETE", async () => {
  await using server = await startServer({ args: ["--mode", "webrtc", "--no-ml"] });
  const request = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
  const health = await (await request("/v1/health")).json();
  const webrtc = health.components.find((c: { name: string }) => c.name === "webrtc");
  assert.ok(webrtc, "a webrtc component in /v1/health");
  assert.match(webrtc.detail, /0\/\d+ sessions/);

  const unauthorized = await request("/v1/webrtc/sessions", { method: "POST", body: "{}" });
  assert.equal(unauthorized.status, 401);
  await unauthorized.body?.cancel();

  const client = await connectWeriftClient(request, server.auth);
  try {
    const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, ...new Uint8Array(40_000), 0xff, 0xd9]);
    client.sendFrame({ seq: 1, captureTimeMs: Date.now(), width: 320, height: 240, format: "jpeg" }, jpeg);
    // With --no-ml there is no vision model: the frame is answered with an error, not dropped.
    const reply = await client.next((m) => m.type === "result" || m.type === "error");
    assert.equal(reply.type === "result" || reply.type === "error" ? reply.seq : -1, 1);
    const listed = await (await request("/v1/webrtc/sessions", { headers: server.auth })).json();
    assert.equal(listed.data.length, 1);
    assert.equal(listed.data[0].frames.received, 1);
    const metrics = await (await request("/metrics", { headers: server.auth })).text();
    assert.match(metrics, /^tabagent_webrtc_sessions 1$/m);
    assert.match(metrics, /tabagent_webrtc_setup_seconds_count 1/);
    const deleted = await request(`/v1/webrtc/sessions/${client.id}`, { method: "DELETE", headers: server.auth });
    assert.equal(deleted.status, 204);
    const gone = await request(`/v1/webrtc/sessions/${client.id}`, { headers: server.auth });
    assert.equal(gone.status, 404);
    assert.equal(gone.headers.get("content-type"), "application/problem+json");
    await gone.body?.cancel();
  } finally {
    await client.close();
  }
});
