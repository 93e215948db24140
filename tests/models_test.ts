/**
 * Models end to end: the real server process pulls from a loopback Hub-protocol stub, streams
 * progress as SSE, lists, serves files with Range, cancels and deletes.
 */
import assert from "node:assert/strict";
import { startServer } from "./_server.ts";
import { pseudoRandomBytes, startHubStub } from "./hub_stub/mod.ts";

const WEIGHTS = pseudoRandomBytes(2 * 1024 * 1024 + 777, 3);
const CONFIG = new TextEncoder().encode('{"model_type":"llama"}\n');

async function setup() {
  const hub = await startHubStub({
    repos: [
      {
        id: "org/tiny-GGUF",
        pipelineTag: "text-generation",
        files: [
          { path: "tiny-q4_k_m.gguf", content: WEIGHTS, lfs: true },
          { path: "tiny-q8_0.gguf", content: pseudoRandomBytes(4096, 9), lfs: true },
          { path: "README.md", content: CONFIG },
        ],
      },
      {
        id: "org/embed",
        files: [{ path: "onnx/model.onnx", content: pseudoRandomBytes(WEIGHTS.length, 5), lfs: true }, {
          path: "config.json",
          content: CONFIG,
        }],
      },
      { id: "evil/repo", files: [{ path: "../../etc/passwd", content: CONFIG }] },
    ],
  });
  const server = await startServer({ args: ["--mode", "http", "--no-ml"], env: { HF_ENDPOINT: hub.hubUrl } });
  return {
    hub,
    server,
    api: (path: string, init: RequestInit = {}) =>
      fetch(`${server.url}${path}`, { ...init, headers: { ...server.auth, ...init.headers } }),
    async [Symbol.asyncDispose]() {
      await server[Symbol.asyncDispose]();
      await hub.close();
    },
  };
}

/** Reads an SSE stream to its end, returning the events. */
async function readEvents(response: Response): Promise<{ event: string; data: Record<string, unknown> }[]> {
  const text = await response.text();
  return text.split("\n\n").filter((block) => block.trim()).map((block) => {
    const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
    const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "{}");
    return { event, data };
  });
}

Deno.test("pull over HTTP: SSE progress to done, listed as downloaded, files served with Range, deleted", async () => {
  await using env = await setup();
  const start = await env.api("/v1/models/pull", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "org/tiny-GGUF" }),
  });
  assert.equal(start.status, 202);
  const { job, progress_url } = await start.json();
  const events = await readEvents(await env.api(progress_url, { headers: { accept: "text/event-stream" } }));
  const last = events.at(-1)!;
  assert.equal(last.event, "done");
  assert.equal(last.data.bytes, WEIGHTS.length);
  assert.equal(last.data.total, WEIGHTS.length);
  // Only the default quantisation was fetched, once.
  assert.deepEqual((last.data.files as { path: string }[]).map((f) => f.path), ["tiny-q4_k_m.gguf"]);
  assert.equal(env.hub.served.get("tiny-q4_k_m.gguf"), WEIGHTS.length);
  assert.equal(env.hub.served.get("tiny-q8_0.gguf"), undefined);
  assert.deepEqual(env.hub.cdnAuthorizations, []);

  const list = await (await env.api("/v1/models")).json();
  assert.equal(list.object, "list");
  const model = list.data.find((m: { id: string }) => m.id === "org/tiny-GGUF");
  assert.ok(model, "pulled model is listed");
  assert.equal(model.object, "model");
  assert.equal(model.downloaded, true);
  assert.equal(model.loaded, false);
  assert.equal(model.owned_by, "org");
  assert.equal(model.task, "text-generation");
  assert.ok(model.size >= WEIGHTS.length);
  assert.ok(list.data.some((m: { in_catalog: boolean; downloaded: boolean }) => m.in_catalog && !m.downloaded));

  for (const path of ["/v1/models/org/tiny-GGUF", "/v1/models/org%2Ftiny-GGUF"]) {
    const one = await env.api(path);
    assert.equal(one.status, 200, path);
    assert.equal((await one.json()).revision, env.hub.commitOf("org/tiny-GGUF"));
  }

  const ranged = await env.api("/v1/models/org/tiny-GGUF/files/tiny-q4_k_m.gguf", {
    headers: { range: "bytes=100-199" },
  });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get("content-range"), `bytes 100-199/${WEIGHTS.length}`);
  assert.equal(ranged.headers.get("etag"), `"${env.hub.sha256Of("org/tiny-GGUF", "tiny-q4_k_m.gguf")}"`);
  assert.deepEqual(new Uint8Array(await ranged.arrayBuffer()), WEIGHTS.slice(100, 200));
  const whole = await env.api("/v1/models/org/tiny-GGUF/files/tiny-q4_k_m.gguf");
  assert.deepEqual(new Uint8Array(await whole.arrayBuffer()), WEIGHTS);

  // The cache layout other modules scan.
  const dir = `${env.server.dataDir}/models/org--tiny-GGUF`;
  assert.deepEqual(await Deno.readFile(`${dir}/tiny-q4_k_m.gguf`), WEIGHTS);
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/.tabagent-manifest.json`));
  assert.equal(manifest.complete, true);
  assert.equal(manifest.files[0].sha256, env.hub.sha256Of("org/tiny-GGUF", "tiny-q4_k_m.gguf"));

  const again = await (await env.api("/v1/models/pull", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "org/tiny-GGUF" }),
  })).json();
  assert.ok(again.job !== job);
  const done = await readEvents(await env.api(again.progress_url));
  assert.equal(done.at(-1)!.event, "done");
  assert.equal(env.hub.served.get("tiny-q4_k_m.gguf"), WEIGHTS.length, "a second pull fetches nothing");

  assert.equal((await env.api("/v1/models/org/tiny-GGUF", { method: "DELETE" })).status, 200);
  assert.equal((await env.api("/v1/models/org/tiny-GGUF")).status, 404);
});

Deno.test("ids that are not org/name and file paths that climb out are refused with 400", async () => {
  await using env = await setup();
  const bad = await env.api("/v1/models/pull", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "just-a-name" }),
  });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).code, "validation_failed");
  assert.equal((await env.api("/v1/models/just-a-name")).status, 400);
  const traversal = await env.api("/v1/models/org/embed/files/..%2F..%2Fetc%2Fpasswd");
  assert.equal(traversal.status, 400);

  // A Hub listing with a path that climbs out fails the pull and writes nothing outside.
  const start = await (await env.api("/v1/models/pull", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "evil/repo" }),
  })).json();
  const events = await readEvents(await env.api(start.progress_url));
  const last = events.at(-1)!;
  assert.equal(last.event, "error");
  assert.equal((last.data.error as { code: string }).code, "bad_request");
  const entries = [];
  for await (const entry of Deno.readDir(env.server.dataDir)) entries.push(entry.name);
  assert.ok(!entries.includes("etc"));
});

Deno.test("a pull cancelled over HTTP stops and keeps resumable state", async () => {
  await using env = await setup();
  env.hub.faults.bytesPerSecond = 32 * 1024;
  const start = await (await env.api("/v1/models/pull", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "org/embed", files: ["onnx/*"] }),
  })).json();
  const stream = await env.api(start.progress_url);
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/"bytes":[1-9]/.test(seen)) seen += (await reader.read()).value ?? "";
  const cancelled = await env.api(start.progress_url, { method: "DELETE" });
  assert.equal(cancelled.status, 200);
  assert.equal((await cancelled.json()).state, "cancelled");
  while (!(await reader.read()).done) { /* drain to the final event */ }
  const dir = `${env.server.dataDir}/models/org--embed/onnx`;
  const state = JSON.parse(await Deno.readTextFile(`${dir}/model.onnx.partial.json`));
  assert.ok(state.done.some((n: number) => n > 0));
  const model = await (await env.api("/v1/models/org/embed")).json();
  assert.equal(model.downloaded, false);
});
