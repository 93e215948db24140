/**
 * The Python ML service end to end: the real server spawns and supervises it, and the HTTP routes
 * (embeddings, vision, chat) go through gRPC to it. Faults: SIGKILL mid-request, a breaker that
 * opens, the server SIGKILLed (no orphan), and a remote worker fetching model files over HTTP.
 */
import assert from "node:assert/strict";
import { MlClient } from "../server/ml/mod.ts";
import { connectWeriftClient } from "../server/webrtc/_werift_client.ts";
import { astronautJpeg720p } from "./_astronaut.ts";
import { ASTRONAUT_PNG, FIXTURE_MODELS, fixtureModelCache } from "./_models.ts";
import { startServer, type TestServer } from "./_server.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const PYTHON = `${ROOT}/python-ml/.venv/bin/python`;
const MINILM = "sentence-transformers/all-MiniLM-L6-v2";
const SENTENCES = [
  "A man is eating food.",
  "A man is eating a piece of bread.",
  "The stock market fell sharply today.",
];

interface WorkerInfo {
  name: string;
  state: string;
  pid: number | null;
  address: string;
  inFlight: number;
  restarts: number;
}

async function workers(server: TestServer): Promise<WorkerInfo[]> {
  const res = await fetch(`${server.url}/v1/ml`, { headers: server.auth });
  assert.deepEqual(res.status, 200);
  return (await res.json()).workers;
}

/** Polls `check` (each poll waits for the server to answer: no sleeps) until it holds or `ms` pass. */
async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** True while `pid` runs (a zombie waiting for init to reap it counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

function post(server: TestServer, path: string, body: unknown, init: RequestInit = {}) {
  return fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { ...server.auth, "content-type": "application/json" },
    body: JSON.stringify(body),
    ...init,
  });
}

function cosine(a: number[], b: number[]): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot; // both are normalised
}

async function sentenceTransformersDirectly(sentences: string[]): Promise<number[][]> {
  const script = `
import json, sys
from sentence_transformers import SentenceTransformer
from tabagent_ml.models import builtin_embedding
model = SentenceTransformer(str(builtin_embedding("${MINILM}")), device="cpu")
print(json.dumps(model.encode(json.loads(sys.argv[1]), normalize_embeddings=True).tolist()))`;
  const out = await new Deno.Command(PYTHON, {
    args: ["-c", script, JSON.stringify(sentences)],
    cwd: `${ROOT}/python-ml`,
    env: { HF_HUB_OFFLINE: "1", PYTHONPATH: `${ROOT}/python-ml` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test({
  name: "the ML service serves embeddings, vision and chat, survives SIGKILL, and leaves no orphan",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using cache = await fixtureModelCache({ transformers: true });
    const server = await startServer({ args: ["--mode", "http", "--model-cache-path", cache.path] });
    try {
      await t.step("health reports the ML component ready", async () => {
        const body = await (await fetch(`${server.url}/v1/health`)).json();
        const ml = body.components.find((c: { name: string }) => c.name === "ml");
        assert.deepEqual(ml.state, "ready", ml.detail);
        assert.deepEqual(body.status, "ready");
      });

      await t.step("embeddings: paraphrases score higher, equal to sentence-transformers", async () => {
        const res = await post(server, "/v1/embeddings", { model: MINILM, input: SENTENCES });
        assert.deepEqual(res.status, 200, await res.clone().text());
        const body = await res.json();
        assert.deepEqual(body.object, "list");
        const vectors: number[][] = body.data.map((d: { embedding: number[] }) => d.embedding);
        assert.deepEqual(vectors[0].length, 384);
        assert.ok(cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3);
        assert.ok(body.usage.prompt_tokens > SENTENCES.length);
        const direct = await sentenceTransformersDirectly(SENTENCES);
        for (let i = 0; i < direct.length; i++) {
          for (let j = 0; j < 384; j++) assert.ok(Math.abs(vectors[i][j] - direct[i][j]) < 1e-5, `vector ${i}[${j}]`);
        }
      });

      await t.step("vision: the astronaut has exactly one face, as raw bytes or base64", async () => {
        const png = await Deno.readFile(ASTRONAUT_PNG);
        const raw = await fetch(`${server.url}/v1/vision/detect?task=faces`, {
          method: "POST",
          headers: { ...server.auth, "content-type": "image/png" },
          body: png,
        });
        assert.deepEqual(raw.status, 200, await raw.clone().text());
        const body = await raw.json();
        assert.deepEqual([body.width, body.height], [512, 512]);
        assert.deepEqual(body.detections.length, 1);
        const { box } = body.detections[0];
        assert.ok(Math.abs(box.x - 0.35) < 0.03 && Math.abs(box.y - 0.16) < 0.03, JSON.stringify(box));
        assert.ok(Math.abs(box.width - 0.19) < 0.03 && Math.abs(box.height - 0.19) < 0.03, JSON.stringify(box));
        assert.ok(body.timings.inference_ms > 0 && body.timings.total_ms >= body.timings.inference_ms);
        const json = await post(server, "/v1/vision/detect", {
          image: `data:image/png;base64,${btoa(Array.from(png, (b) => String.fromCharCode(b)).join(""))}`,
          task: ["faces", "pose"],
        });
        const both = await json.json();
        assert.deepEqual(both.detections.map((d: { task: string }) => d.task).sort(), ["faces", "pose"]);
      });

      await t.step("vision: bad input gets problem+json", async () => {
        const notImage = await fetch(`${server.url}/v1/vision/detect`, {
          method: "POST",
          headers: { ...server.auth, "content-type": "application/octet-stream" },
          body: new TextEncoder().encode("this is not an image"),
        });
        assert.deepEqual(notImage.status, 415);
        assert.deepEqual(notImage.headers.get("content-type"), "application/problem+json");
        assert.deepEqual((await notImage.json()).code, "unsupported_media_type");
        const empty = await fetch(`${server.url}/v1/vision/detect`, {
          method: "POST",
          headers: { ...server.auth, "content-type": "image/png" },
          body: new Uint8Array(0),
        });
        assert.deepEqual(empty.status, 400);
        await empty.body?.cancel();
        const task = await fetch(`${server.url}/v1/vision/detect?task=ears`, {
          method: "POST",
          headers: { ...server.auth, "content-type": "image/png" },
          body: new Uint8Array([1, 2, 3]),
        });
        assert.deepEqual(task.status, 400);
        assert.deepEqual((await task.json()).code, "validation_failed");
      });

      await t.step("chat: a Transformers model streams through the service", async () => {
        const request = {
          model: FIXTURE_MODELS.transformers,
          messages: [{ role: "user", content: "hello" }],
          max_tokens: 8,
          temperature: 0,
        };
        const whole = await (await post(server, "/v1/chat/completions", request)).json();
        assert.deepEqual(whole.object, "chat.completion");
        assert.ok(whole.usage.completion_tokens >= 1 && whole.usage.completion_tokens <= 8);
        const stream = await post(server, "/v1/chat/completions", {
          ...request,
          stream: true,
          stream_options: { include_usage: true },
        });
        assert.ok(stream.headers.get("content-type")?.startsWith("text/event-stream"));
        const frames = (await stream.text()).split("\n\n").filter((f) => f.startsWith("data: "));
        assert.deepEqual(frames.at(-1), "data: [DONE]");
        const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.slice(6)));
        const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
        assert.deepEqual(text, whole.choices[0].message.content);
        assert.deepEqual(chunks.at(-1).usage.completion_tokens, whole.usage.completion_tokens);
      });

      await t.step("an aborted HTTP request stops the generation in Python", async () => {
        const [worker] = await workers(server);
        const client = new MlClient({ address: worker.address, token: server.token });
        try {
          const controller = new AbortController();
          const res = await post(server, "/v1/chat/completions", {
            model: FIXTURE_MODELS.transformers,
            messages: [{ role: "user", content: "go on" }],
            max_tokens: 1500,
            temperature: 0, // greedy: the tiny model's answer to this runs to max_tokens, never ending early
            stream: true,
          }, { signal: controller.signal });
          const reader = res.body!.getReader();
          await reader.read();
          assert.deepEqual((await client.status()).in_flight, 1);
          controller.abort();
          await reader.cancel().catch(() => {});
          await until("Python to stop generating", async () => (await client.status()).in_flight === 0);
        } finally {
          client.close();
        }
      });

      await t.step("SIGKILL mid-request: fast 503, restart, and the next request succeeds", async () => {
        const png = await Deno.readFile(ASTRONAUT_PNG);
        const detect = () =>
          fetch(`${server.url}/v1/vision/detect?task=faces`, {
            method: "POST",
            headers: { ...server.auth, "content-type": "image/png" },
            body: png,
          });
        const [before] = await workers(server);
        Deno.kill(before.pid!, "SIGSTOP"); // hold the request inside Python
        const pending = detect();
        await until("the request to reach the worker", async () => (await workers(server))[0].inFlight === 1);
        Deno.kill(before.pid!, "SIGKILL");
        const failed = await pending;
        assert.deepEqual(failed.status, 503);
        assert.deepEqual(failed.headers.get("content-type"), "application/problem+json");
        assert.deepEqual((await failed.json()).code, "unavailable");
        await until("the worker to serve again", async () => {
          const [w] = await workers(server);
          return w.state === "ready" && w.pid !== before.pid;
        });
        const [after] = await workers(server);
        assert.deepEqual(after.restarts, before.restarts + 1);
        const again = await detect();
        assert.deepEqual(again.status, 200);
        assert.deepEqual((await again.json()).detections.length, 1);
      });

      await t.step("the server SIGKILLed leaves no Python process behind", async () => {
        const [worker] = await workers(server);
        assert.ok(alive(worker.pid!));
        assert.deepEqual(await server.stop("SIGKILL"), 137);
        await until("the worker to notice its lifeline closed", () => Promise.resolve(!alive(worker.pid!)), 15_000);
      });
    } finally {
      await server[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name: "a breaker that opened shows as degraded while the rest of the server serves",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using server = await startServer({ args: ["--mode", "http"], env: { TABAGENT_ML_PYTHON: "/bin/false" } });
    await until("the breaker to open", async () => {
      const body = await (await fetch(`${server.url}/v1/health`)).json();
      return body.components.find((c: { name: string }) => c.name === "ml").detail?.includes("breaker open");
    });
    const health = await fetch(`${server.url}/v1/health`);
    assert.deepEqual(health.status, 200);
    assert.deepEqual((await health.json()).status, "degraded");
    const models = await fetch(`${server.url}/v1/models`, { headers: server.auth });
    assert.deepEqual(models.status, 200);
    await models.body?.cancel();
    const detect = await fetch(`${server.url}/v1/vision/detect`, {
      method: "POST",
      headers: { ...server.auth, "content-type": "image/png" },
      body: await Deno.readFile(ASTRONAUT_PNG),
    });
    assert.deepEqual(detect.status, 503);
    assert.deepEqual((await detect.json()).code, "unavailable");
  },
});

Deno.test({
  name: "a remote worker fetches a cached model's files from the server, with the token",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using cache = await fixtureModelCache({ transformers: true });
    const dataDir = await Deno.makeTempDir({ prefix: "tabagent-test-" });
    const fetchCache = await Deno.makeTempDir({ prefix: "tabagent-fetch-" });
    const token = "remote-worker-test-token-0123456789abcdef";
    await Deno.writeTextFile(`${dataDir}/api_token`, token, { mode: 0o600 });
    const worker = new Deno.Command(PYTHON, {
      args: ["-m", "tabagent_ml", "--address", "127.0.0.1:0", "--lifeline", "stdin", "--fetch-cache", fetchCache],
      cwd: `${ROOT}/python-ml`,
      env: { TABAGENT_ML_TOKEN: token, PYTHONPATH: `${ROOT}/python-ml` },
      stdin: "piped",
      stderr: "piped",
    }).spawn();
    try {
      const reader = worker.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes('"listening"')) text += (await reader.read()).value ?? "";
      const address = /"address": "([^"]+)"/.exec(text)![1];
      (async () => {
        while (!(await reader.read()).done) { /* drain the worker's log */ }
      })();
      await using server = await startServer({
        dataDir,
        args: ["--mode", "http", "--ml-worker", address, "--model-cache-path", cache.path],
      });
      const [remote] = await workers(server);
      assert.deepEqual([remote.name, remote.state], ["remote-0", "ready"]);
      const res = await post(server, "/v1/chat/completions", {
        model: FIXTURE_MODELS.transformers,
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 4,
      });
      assert.deepEqual(res.status, 200, await res.clone().text());
      assert.deepEqual((await res.json()).object, "chat.completion");
      const fetched = await Deno.readFile(`${fetchCache}/tabagent--tiny-transformers/model.safetensors`);
      const original = await Deno.readFile(`${cache.path}/tabagent--tiny-transformers/model.safetensors`);
      assert.deepEqual(fetched.byteLength, original.byteLength);
      assert.ok(fetched.every((b, i) => b === original[i]));
    } finally {
      await worker.stdin.close();
      await worker.status;
      await Deno.remove(dataDir, { recursive: true });
      await Deno.remove(fetchCache, { recursive: true });
    }
  },
});

Deno.test({
  name: "mode all: WebRTC frames are answered with the ML service's MediaPipe face detection",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using server = await startServer({ args: ["--mode", "all"] });
    const request = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
    const client = await connectWeriftClient(request, server.auth);
    try {
      const jpeg = await Deno.readFile(await astronautJpeg720p());
      client.sendFrame({ seq: 1, captureTimeMs: Date.now(), width: 1280, height: 720, format: "jpeg" }, jpeg);
      const reply = await client.next((m) => m.type === "result" || m.type === "error");
      assert.ok(reply.type === "result", JSON.stringify(reply));
      assert.deepEqual(reply.seq, 1);
      assert.deepEqual(reply.model, "mediapipe/face_detection_short_range");
      assert.deepEqual(reply.detections.length, 1);
      const face = reply.detections[0];
      // The face sits in the middle third of the 16:9 frame (the square photo is pasted at x 280..1000).
      assert.ok(face.box.x > 0.25 && face.box.x + face.box.width < 0.75, JSON.stringify(face.box));
      assert.ok(reply.timings.inference_ms! > 0);
    } finally {
      await client.close();
    }
  },
});
