/** End-to-end: the real server process on loopback, as a user or a client would meet it. */
import assert from "node:assert/strict";
import { runCli, startServer } from "./_server.ts";
import { waitForServerRecord } from "./_native.ts";

const MAIN = new URL("../server/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** Sends a raw HTTP/1.1 request so the Host header is exactly what we say. */
async function rawRequest(url: string, lines: string[]): Promise<string> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(new TextEncoder().encode([...lines, "Connection: close", "", ""].join("\r\n")));
  const chunks: Uint8Array[] = [];
  for await (const chunk of conn.readable) chunks.push(chunk);
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
}

Deno.test("the server answers health, guards the API and stops cleanly on SIGTERM", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const health = await fetch(`${server.url}/v1/health`);
  assert.equal(health.status, 200);
  const body = await health.json();
  assert.equal(body.status, "ready");
  assert.equal(body.mode, "http");
  assert.ok(body.components.some((c: { name: string }) => c.name === "http"));

  const noToken = await fetch(`${server.url}/metrics`);
  assert.equal(noToken.status, 401);
  assert.equal(noToken.headers.get("content-type"), "application/problem+json");
  assert.equal((await noToken.json()).code, "unauthorized");
  const wrongToken = await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer wrong" } });
  assert.equal(wrongToken.status, 401);
  await wrongToken.body?.cancel();

  const metrics = await fetch(`${server.url}/metrics`, { headers: server.auth });
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /tabagent_component_state\{component="http",state="ready"\} 1/);

  const unknown = await fetch(`${server.url}/v1/does-not-exist`, { headers: server.auth });
  assert.equal(unknown.status, 404);
  assert.equal((await unknown.json()).code, "not_found");

  const oversized = await fetch(`${server.url}/v1/anything`, {
    method: "POST",
    headers: { ...server.auth, "content-type": "application/json" },
    body: "x".repeat(9 * 1024 * 1024),
  });
  assert.equal(oversized.status, 413);
  assert.equal((await oversized.json()).code, "payload_too_large");

  const rebinding = await rawRequest(server.url, ["GET /v1/health HTTP/1.1", "Host: attacker.example:8765"]);
  assert.match(rebinding, /^HTTP\/1\.1 403/);
  assert.match(rebinding, /forbidden_host/);

  const evil = await fetch(`${server.url}/v1/health`, { headers: { origin: "https://evil.example" } });
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
  await evil.body?.cancel();

  assert.equal(await server.stop("SIGTERM"), 0);
  assert.ok(server.logs.some((line) => line.includes('"msg":"stopping"')));
});

Deno.test("the token file is created with mode 0600 and `tabagent token` prints it", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const info = await Deno.stat(`${server.dataDir}/api_token`);
  assert.equal(info.mode! & 0o777, 0o600);
  const cli = await runCli(["token", "--data-dir", server.dataDir]);
  assert.equal(cli.code, 0);
  assert.equal(cli.stdout.trim(), server.token);
});

Deno.test("the OpenAPI document is valid and every docs page loads with its assets", async () => {
  await using server = await startServer({ args: ["--mode", "web", "--no-ml"] });
  const doc = await (await fetch(`${server.url}/api-doc/openapi.json`)).json();
  assert.equal(doc.openapi, "3.1.0");
  // Mode web is the API, the web files and tab video (issue 13: modes web and webrtc start WebRTC).
  assert.ok(doc.paths["/v1/webrtc/sessions"], "WebRTC signaling is documented in mode web");
  assert.ok(doc.info.title && doc.info.version);
  for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, { responses: object }>>)) {
    assert.ok(path.startsWith("/"), path);
    for (const [method, op] of Object.entries(operations)) {
      assert.ok(["get", "post", "put", "patch", "delete", "head", "options"].includes(method), `${method} ${path}`);
      assert.ok(Object.keys(op.responses).length > 0, `${method} ${path} has responses`);
    }
  }
  for (const path of ["/v1/health", "/metrics"]) assert.ok(doc.paths[path], `${path} documented`);
  for (const page of ["/api-doc", "/api-doc/swagger", "/api-doc/redoc", "/api-doc/scalar"]) {
    const res = await fetch(`${server.url}${page}`);
    assert.equal(res.status, 200, page);
    const html = await res.text();
    for (const [, src] of html.matchAll(/(?:src|href)="(\/api-doc\/assets\/[^"]+)"/g)) {
      const asset = await fetch(`${server.url}${src}`);
      assert.equal(asset.status, 200, src);
      assert.ok((await asset.arrayBuffer()).byteLength > 100, `${src} has content`);
    }
  }
  const landing = await fetch(`${server.url}/`);
  assert.equal(landing.status, 200);
  assert.match(await landing.text(), /TabAgent/);
});

Deno.test("bad command lines fail with one clear line and exit code 2", async () => {
  const unknown = await runCli(["serve", "--frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^tabagent: serve: unknown option '--frobnicate'/);
  assert.equal(unknown.stderr.trim().split("\n").length, 1);
  const badPort = await runCli(["serve", "--port", "99999"]);
  assert.equal(badPort.code, 2);
  assert.match(badPort.stderr, /port/);
  const badMode = await runCli(["serve", "--mode", "turbo"]);
  assert.equal(badMode.code, 2);
  assert.match(badMode.stderr, /mode/);
  const badCommand = await runCli(["srve"]);
  assert.equal(badCommand.code, 2);
  assert.match(badCommand.stderr, /Did you mean 'serve'/);
  const noAuthPublic = await runCli(["serve", "--no-auth", "--host", "0.0.0.0"]);
  assert.equal(noAuthPublic.code, 2);
  assert.match(noAuthPublic.stderr, /loopback/);
});

Deno.test("--help and --version answer", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage:/);
  assert.match(help.stdout, /Examples:/);
  const serveHelp = await runCli(["serve", "--help"]);
  assert.match(serveHelp.stdout, /--mode/);
  const version = await runCli(["--version"]);
  assert.match(version.stdout, /^tabagent \d+\.\d+\.\d+/);
});

Deno.test("--no-auth on loopback serves the API without a token", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--no-auth"] });
  assert.equal((await fetch(`${server.url}/metrics`)).status, 200);
});

Deno.test("a port in use is reported clearly", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  const dataDir = await Deno.makeTempDir();
  const cli = await runCli(["serve", "--mode", "http", "--port", String(port), "--data-dir", dataDir]);
  listener.close();
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /already in use/);
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("native mode answers framed requests on stdin/stdout and exits when stdin closes", async () => {
  const dataDir = await Deno.makeTempDir();
  // The host reports the server that really runs on this data dir (any port), not a configured one.
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"], dataDir });
  await waitForServerRecord(dataDir);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, "chrome-extension://elgmcgkdbcjcidkoghpbchchoenbofnl/"],
    env: { TABAGENT_DATA_DIR: dataDir, TABAGENT_PORT: "9123" },
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const frame = (value: unknown) => {
    const body = new TextEncoder().encode(JSON.stringify(value));
    const out = new Uint8Array(4 + body.length);
    new DataView(out.buffer).setUint32(0, body.length, true);
    out.set(body, 4);
    return out;
  };
  const writer = child.stdin.getWriter();
  await writer.write(frame({ id: 1, type: "ping" }));
  await writer.write(frame({ id: 2, type: "server_info" }));
  await writer.write(frame({ id: 3, type: "launch_missiles" }));
  await writer.close();
  const { stdout, code } = await child.output();
  assert.equal(code, 0);
  const replies: { id: number; ok: boolean; result?: Record<string, unknown>; error?: { code: string } }[] = [];
  for (let at = 0; at < stdout.length;) {
    const length = new DataView(stdout.buffer, stdout.byteOffset + at, 4).getUint32(0, true);
    replies.push(JSON.parse(new TextDecoder().decode(stdout.subarray(at + 4, at + 4 + length))));
    at += 4 + length;
  }
  // Requests are answered concurrently (a streaming relay must not hold up the rest): match by id.
  replies.sort((a, b) => a.id - b.id);
  assert.deepEqual(replies.map((r) => [r.id, r.ok]), [[1, true], [2, true], [3, false]]);
  assert.equal(replies[1].result?.url, server.url);
  assert.equal(replies[1].result?.token, (await Deno.readTextFile(`${dataDir}/api_token`)).trim());
  assert.equal(replies[2].error?.code, "validation_failed");
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("install-host writes a launcher that Chrome can start: it answers as the native host", async () => {
  const home = await Deno.makeTempDir();
  const dataDir = `${home}/data`;
  await Deno.mkdir(dataDir);
  await using _server = await startServer({ args: ["--mode", "http", "--no-ml"], dataDir });
  await waitForServerRecord(dataDir);
  const install = await runCli(["install-host", "--browser", "chromium", "--data-dir", dataDir], { HOME: home });
  assert.equal(install.code, 0, install.stderr);
  const manifest = JSON.parse(
    await Deno.readTextFile(`${home}/.config/chromium/NativeMessagingHosts/dev.tabagent.host.json`),
  );
  assert.deepEqual(manifest.allowed_origins, ["chrome-extension://elgmcgkdbcjcidkoghpbchchoenbofnl/"]);
  // Start the launcher exactly as Chrome does: the manifest's path, the caller's origin as argument.
  const host = new Deno.Command(manifest.path, {
    args: ["chrome-extension://elgmcgkdbcjcidkoghpbchchoenbofnl/"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const body = new TextEncoder().encode(JSON.stringify({ id: 7, type: "server_info" }));
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length, true);
  frame.set(body, 4);
  const writer = host.stdin.getWriter();
  await writer.write(frame);
  await writer.close();
  const { code, stdout, stderr } = await host.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const length = new DataView(stdout.buffer, stdout.byteOffset, 4).getUint32(0, true);
  const reply = JSON.parse(new TextDecoder().decode(stdout.subarray(4, 4 + length)));
  assert.equal(reply.id, 7);
  assert.equal(reply.ok, true);
  assert.equal(reply.result.token, (await Deno.readTextFile(`${dataDir}/api_token`)).trim());
  const removed = await runCli(["install-host", "--browser", "chromium", "--uninstall", "--data-dir", dataDir], {
    HOME: home,
  });
  assert.match(removed.stdout, /removed/);
  await Deno.remove(home, { recursive: true });
});

Deno.test("a second server on the same data dir is refused with the first one's pid", async () => {
  await using first = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const second = await runCli(["serve", "--mode", "http", "--no-ml", "--port", "0", "--data-dir", first.dataDir]);
  assert.equal(second.code, 1);
  assert.match(second.stderr, new RegExp(`Another TabAgent server \\(pid ${first.process.pid}\\) is using`));
  assert.equal((await fetch(`${first.url}/v1/health`)).status, 200);
});
