/**
 * A damaged model file is never trusted: a re-pull re-hashes a file whose mtime changed and fetches
 * it again when its bytes differ, the manifest's sha256 is not served as the ETag of changed bytes,
 * and `POST /v1/models/{id}/verify` and `tabagent models verify` re-hash everything.
 */
import assert from "node:assert/strict";
import { runCli, startServer } from "./_server.ts";
import { pseudoRandomBytes, startHubStub } from "./hub_stub/mod.ts";

const WEIGHTS = pseudoRandomBytes(1024 * 1024 + 333, 7);
const ID = "org/tiny-GGUF";
const FILE = "tiny-q4_k_m.gguf";

/** Flips one byte in place: same size, different bytes, and a different mtime. */
async function damage(path: string): Promise<void> {
  using file = await Deno.open(path, { read: true, write: true });
  await file.seek(1000, Deno.SeekMode.Start);
  await file.write(new Uint8Array([WEIGHTS[1000] ^ 0xff]));
  await Deno.utime(path, new Date(), new Date(Date.now() - 60_000));
}

Deno.test("a damaged model file is re-hashed, re-fetched, not served with the manifest's ETag, and found by verify", async () => {
  await using hub = await startHubStub({
    repos: [{ id: ID, files: [{ path: FILE, content: WEIGHTS, lfs: true }] }],
  });
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"], env: { HF_ENDPOINT: hub.hubUrl } });
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, { ...init, headers: { ...server.auth, ...init.headers } });
  const pull = async () => {
    const start = await (await api("/v1/models/pull", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: ID }),
    })).json();
    const progress = await (await api(start.progress_url, { headers: { accept: "application/json" } })).json();
    if (progress.state === "done") return progress;
    const text = await (await api(start.progress_url)).text();
    assert.ok(text.includes("event: done"), text);
  };
  const etag = async () => {
    const res = await api(`/v1/models/${ID}/files/${FILE}`, { method: "HEAD" });
    await res.body?.cancel();
    return res.headers.get("etag");
  };
  const path = `${server.dataDir}/models/org--tiny-GGUF/${FILE}`;
  const sha = `"${hub.sha256Of(ID, FILE)}"`;

  await pull();
  assert.equal(hub.served.get(FILE), WEIGHTS.length);
  assert.equal(await etag(), sha);
  const verified = await (await api(`/v1/models/${ID}/verify`, { method: "POST" })).json();
  assert.deepEqual([verified.ok, verified.files[0].state, verified.hashed_bytes], [true, "ok", WEIGHTS.length]);

  // Damaged in place, same size: not served under the sha256 of other bytes, and re-fetched by a pull.
  await damage(path);
  assert.notEqual(await etag(), sha);
  await pull();
  assert.equal(hub.served.get(FILE), 2 * WEIGHTS.length, "the damaged file was fetched again");
  assert.deepEqual(await Deno.readFile(path), WEIGHTS);
  assert.equal(await etag(), sha);

  // verify re-hashes everything and marks the model incomplete until a pull repairs it.
  await damage(path);
  const res = await api(`/v1/models/${ID}/verify`, { method: "POST" });
  assert.equal(res.status, 200);
  const report = await res.json();
  assert.equal(report.ok, false);
  assert.equal(report.files[0].state, "damaged");
  assert.notEqual(report.files[0].actual_sha256, report.files[0].sha256);
  assert.equal((await (await api(`/v1/models/${ID}`)).json()).downloaded, false);

  const cli = await runCli(["models", "verify", ID, "--data-dir", server.dataDir, "--port", new URL(server.url).port]);
  assert.equal(cli.code, 1, cli.stderr);
  assert.ok(cli.stdout.includes(`damaged  ${ID}/${FILE}`), cli.stdout);

  await pull();
  assert.equal(hub.served.get(FILE), 3 * WEIGHTS.length);
  const repaired = await runCli(["models", "verify", "--data-dir", server.dataDir, "--port", new URL(server.url).port]);
  assert.equal(repaired.code, 0, repaired.stderr + repaired.stdout);
  assert.ok(repaired.stdout.includes(`ok       ${ID}`), repaired.stdout);
});

Deno.test("tabagent models verify works on the cache without a server", async () => {
  await using hub = await startHubStub({ repos: [{ id: ID, files: [{ path: FILE, content: WEIGHTS, lfs: true }] }] });
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-verify-" });
  try {
    const env = { HF_ENDPOINT: hub.hubUrl };
    const pulled = await runCli(["models", "pull", ID, "--local", "--data-dir", dataDir], env);
    assert.equal(pulled.code, 0, pulled.stderr);
    const ok = await runCli(["models", "verify", "--local", "--data-dir", dataDir]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.stdout.includes(`ok       ${ID}`), ok.stdout);
    await damage(`${dataDir}/models/org--tiny-GGUF/${FILE}`);
    const bad = await runCli(["models", "verify", ID, "--local", "--data-dir", dataDir]);
    assert.equal(bad.code, 1);
    assert.ok(bad.stdout.includes("damaged"), bad.stdout);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
