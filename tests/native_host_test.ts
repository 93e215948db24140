/**
 * The real native host process over pipes: `hello` finds the server this data dir's record names
 * (any port), starts one when none runs, relays HTTP with streaming, answers bad frames with error
 * frames, and survives 10,000 random and malformed frames without a crash or a stray stdout byte.
 */
import assert from "node:assert/strict";
import { SERVER_RECORD_FILE } from "../server/native/mod.ts";
import { spawnHost, waitForServerRecord } from "./_native.ts";
import { startServer } from "./_server.ts";

Deno.test({
  name: "native host: hello, relay with streaming, errors, stale records",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const dataDir = await Deno.makeTempDir({ prefix: "tabagent-native-" });
    const server = await startServer({ args: ["--mode", "http", "--no-ml"], dataDir });
    await using host = spawnHost({ dataDir });
    try {
      await t.step("the server records where it listens (0600) and hello hands over URL, token, version", async () => {
        const record = await waitForServerRecord(dataDir);
        assert.equal(record.url, server.url);
        assert.equal(record.pid, server.process.pid);
        assert.equal((await Deno.stat(`${dataDir}/${SERVER_RECORD_FILE}`)).mode! & 0o777, 0o600);
        const [reply] = await host.call({ type: "hello", auto_start: false });
        assert.equal(reply.ok, true);
        const result = reply.result as Record<string, unknown>;
        assert.equal(result.url, server.url);
        assert.equal(result.token, server.token);
        assert.equal(typeof result.version, "string");
      });

      await t.step("a relayed request reaches the same handlers, with the same errors", async () => {
        const health = await host.call({ type: "request", method: "GET", path: "/v1/health" });
        assert.equal((health[0].response as { status: number }).status, 200);
        const body = health.filter((f) => typeof f.data === "string").map((f) => f.data).join("");
        assert.equal(JSON.parse(body).status, "ready");
        assert.equal(health.at(-1)!.end, true);
        const created = await host.call({
          type: "request",
          method: "POST",
          path: "/v1/memory/conversations",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ title: "via the relay" }),
        });
        assert.equal((created[0].response as { status: number }).status, 201);
        const missing = await host.call({ type: "request", method: "GET", path: "/v1/memory/conversations/nope" });
        const head = missing[0].response as { status: number; headers: Record<string, string> };
        assert.equal(head.status, 404);
        assert.match(head.headers["content-type"], /problem\+json/);
        const escape = await host.call({ type: "request", method: "GET", path: "//example.com/x" });
        assert.equal((escape[0].error as { code: string }).code, "validation_failed");
      });

      await t.step("a streamed reply arrives as several frames ending in a final one", async () => {
        // A 3 MB message read back is well over Chrome's 1 MiB per message: frames stay under it.
        const conversation = await (await fetch(`${server.url}/v1/memory/conversations`, {
          method: "POST",
          headers: { ...server.auth, "content-type": "application/json" },
          body: JSON.stringify({ title: "big" }),
        })).json();
        const big = "z".repeat(3_000_000);
        await (await fetch(`${server.url}/v1/memory/conversations/${conversation.id}/messages`, {
          method: "POST",
          headers: { ...server.auth, "content-type": "application/json" },
          body: JSON.stringify({ messages: [{ role: "user", content: big }] }),
        })).body?.cancel();
        const frames = await host.call({
          type: "request",
          method: "GET",
          path: `/v1/memory/conversations/${conversation.id}/messages`,
        });
        assert.ok(frames.length > 3, `${frames.length} frames`);
        const text = frames.map((f) => (typeof f.data === "string" ? f.data : "")).join("");
        assert.equal(JSON.parse(text).items[0].content, big);
      });

      await t.step("bad frames get error frames with stable codes and the host keeps serving", async () => {
        await host.writeRaw(new Uint8Array([3, 0, 0, 0, ...new TextEncoder().encode("{x}")]));
        assert.equal(((await host.next()).error as { code: string }).code, "bad_request");
        await host.writeRaw(new Uint8Array([2, 0, 0, 0, 0xc3, 0x28]));
        assert.equal(((await host.next()).error as { code: string }).code, "bad_request");
        const [unknown] = await host.call({ type: "launch_missiles" });
        assert.equal((unknown.error as { code: string }).code, "validation_failed");
        const [pong] = await host.call({ type: "ping" });
        assert.deepEqual(pong.result, { pong: true });
      });

      await t.step("with the server stopped, hello says so with the exact command", async () => {
        assert.equal(await server.stop(), 0);
        await assert.rejects(Deno.stat(`${dataDir}/${SERVER_RECORD_FILE}`), Deno.errors.NotFound);
        const [reply] = await host.call({ type: "hello", auto_start: false });
        assert.equal(reply.ok, false);
        const error = reply.error as { code: string; command: string };
        assert.equal(error.code, "unavailable");
        assert.equal(error.command, `tabagent serve --data-dir ${dataDir}`);
        // A record left by a process that is gone is stale.
        await Deno.writeTextFile(
          `${dataDir}/${SERVER_RECORD_FILE}`,
          JSON.stringify({ url: "http://127.0.0.1:9", pid: 2 ** 22 + 17, version: "x", mode: "all", started_at: "" }),
        );
        const [stale] = await host.call({ type: "hello", auto_start: false });
        assert.equal(stale.ok, false);
      });

      await t.step("an oversized frame ends the host cleanly", async () => {
        await host.writeRaw(new Uint8Array([0xff, 0xff, 0xff, 0x7f]));
        assert.equal(((await host.next()).error as { code: string }).code, "payload_too_large");
        assert.equal(await host.close(), 0);
        assert.equal(host.stdoutBytes(), host.framedBytes(), "nothing but frames on stdout");
      });
    } finally {
      await server.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "native host: hello starts a server when none runs, and says so while it waits",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "tabagent-native-start-" });
    // The started server inherits the environment: a free port, no ML service, API only.
    await using host = spawnHost({
      dataDir,
      env: { TABAGENT_PORT: "0", TABAGENT_NO_ML: "1", TABAGENT_MODE: "http" },
    });
    let pid: number | undefined;
    try {
      const frames = await host.call({ type: "hello" });
      assert.equal((frames[0].progress as { state: string }).state, "starting");
      const last = frames.at(-1)!;
      assert.equal(last.ok, true, JSON.stringify(last));
      const result = last.result as { url: string; token: string; started: boolean };
      assert.equal(result.started, true);
      assert.equal((await fetch(`${result.url}/v1/health`)).status, 200);
      pid = JSON.parse(await Deno.readTextFile(`${dataDir}/${SERVER_RECORD_FILE}`)).pid;
      // Closing the host (Chrome closing the port) leaves the detached server running.
      assert.equal(await host.close(), 0);
      assert.equal((await fetch(`${result.url}/v1/health`)).status, 200);
    } finally {
      if (pid) {
        Deno.kill(pid, "SIGTERM");
        for (let i = 0; i < 100; i++) {
          try {
            await Deno.stat(`/proc/${pid}`);
            await new Promise((resolve) => setTimeout(resolve, 100));
          } catch {
            break;
          }
        }
      }
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "native host: a server that cannot start is reported at once, with the command to see why",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "tabagent-native-fail-" });
    // A mode that does not exist: the host runs (its mode is fixed), the server it starts exits at once.
    await using host = spawnHost({ dataDir, env: { TABAGENT_MODE: "bogus" } });
    const frames = await host.call({ type: "hello" });
    const last = frames.at(-1)!;
    assert.equal(last.ok, false);
    assert.equal((last.error as { command: string }).command, `tabagent serve --data-dir ${dataDir}`);
    assert.match((last.error as { detail: string }).detail, /did not start/);
    assert.equal(await host.close(), 0);
    await Deno.remove(dataDir, { recursive: true });
  },
});

/** A seeded generator, so a failing fuzz run can be repeated. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test({
  name: "native host fuzz: 10,000 random and malformed frames, 0 crashes, 0 stray stdout bytes",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const seed = Number(Deno.env.get("TABAGENT_FUZZ_SEED") ?? 20261129);
    const next = random(seed);
    const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)];
    const dataDir = await Deno.makeTempDir({ prefix: "tabagent-fuzz-" });
    await using host = spawnHost({ dataDir });
    const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
    const values = [null, true, 0, -1, 1e308, "", "ping", "x".repeat(300), [], {}, [1, "a"], { type: "ping" }];
    const bodies: (() => Uint8Array)[] = [
      () => randomBytes(Math.floor(next() * 64)), // random bytes: bad UTF-8 or bad JSON
      () => new TextEncoder().encode(JSON.stringify(pick(values))), // JSON of the wrong shape
      () =>
        new TextEncoder().encode(JSON.stringify({ type: pick(["ping", "cancel", "nope", 7, null]), id: pick(values) })),
      () =>
        new TextEncoder().encode(
          JSON.stringify({
            type: "request",
            id: pick([1, "a"]),
            method: pick(["GET", "TRACE", 1]),
            path: pick(values),
          }),
        ),
      () => new TextEncoder().encode(JSON.stringify({ type: "cancel", target: pick(values) })),
      () => new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), // a BOM before {}
      () => new Uint8Array(0), // empty frame
    ];
    const FRAMES = 10_000;
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < FRAMES; i++) {
      const body = pick(bodies)();
      const out = new Uint8Array(4 + body.byteLength);
      new DataView(out.buffer).setUint32(0, body.byteLength, true);
      out.set(body, 4);
      chunks.push(out);
    }
    // Written in uneven pieces, as a pipe may deliver them.
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.byteLength;
    }
    for (let offset = 0; offset < all.byteLength;) {
      const size = 1 + Math.floor(next() * 8192);
      await host.writeRaw(all.subarray(offset, offset + size));
      offset += size;
    }
    let replies = 0;
    for (; replies < FRAMES; replies++) {
      const reply = await host.next();
      assert.ok(reply.ok === true || reply.ok === false, JSON.stringify(reply));
    }
    await host.send({ id: "last", type: "ping" });
    assert.deepEqual((await host.next()).result, { pong: true });
    assert.equal(await host.close(), 0, host.stderr());
    assert.equal(host.stdoutBytes(), host.framedBytes(), "nothing but frames on stdout");
    assert.doesNotMatch(host.stderr(), /panic|uncaught/i);
    await Deno.remove(dataDir, { recursive: true });
  },
});
