/**
 * End-to-end: the official `openai` client against a real server process serving the generated
 * tiny GGUF and ONNX models from a model cache in the download layout.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { FIXTURE_MODELS, fixtureModelCache } from "./_models.ts";
import { startServer } from "./_server.ts";

const MODEL = FIXTURE_MODELS.chat;
const hello = [{ role: "user" as const, content: "Hello there" }];

Deno.test({
  name: "OpenAI client against the server: streaming, usage, stop, max_tokens, seed, JSON schema, tools, errors",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using cache = await fixtureModelCache();
    await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--model-cache-path", cache.path] });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.token, maxRetries: 0 });
    const system = async () =>
      await (await fetch(`${server.url}/v1/system`, { headers: server.auth })).json() as {
        inference: {
          models: { id: string; state: string; sequences: { busy: number }; generations: { aborted: number } }[];
        };
        hardware: { recommended: { threads: number } };
      };

    await t.step("streams a reply and gets usage in the last chunk", async () => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: hello,
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 10,
        temperature: 0,
      });
      let text = "";
      let usage: OpenAI.CompletionUsage | null | undefined;
      let finish: string | null = null;
      let role: string | undefined;
      for await (const chunk of stream) {
        assert.equal(chunk.object, "chat.completion.chunk");
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        role ??= choice.delta.role;
        text += choice.delta.content ?? "";
        finish = choice.finish_reason ?? finish;
      }
      assert.equal(role, "assistant");
      assert.equal(finish, "length");
      assert.ok(text.length > 0);
      assert.equal(usage?.completion_tokens, 10);
      assert.ok((usage?.prompt_tokens ?? 0) > 0);
      assert.equal(usage?.total_tokens, usage!.prompt_tokens + usage!.completion_tokens);
    });

    await t.step("a next turn sent as plain messages reports its reused prefix as cached_tokens", async () => {
      const first = [{ role: "user" as const, content: "Tell me about the sea and the harbour." }];
      const turn1 = await client.chat.completions.create({
        model: MODEL,
        messages: first,
        max_tokens: 8,
        temperature: 0,
      });
      const turn2 = await client.chat.completions.create({
        model: MODEL,
        messages: [
          ...first,
          { role: "assistant", content: turn1.choices[0].message.content },
          { role: "user", content: "And the lighthouse?" },
        ],
        max_tokens: 4,
        temperature: 0,
      });
      // Turn 1's whole prompt was not processed again; the reply and the new message were.
      const cached = turn2.usage?.prompt_tokens_details?.cached_tokens ?? 0;
      assert.ok(cached >= turn1.usage!.prompt_tokens, `${cached} of ${turn2.usage?.prompt_tokens}`);
      assert.ok(cached < turn2.usage!.prompt_tokens);
    });

    await t.step("non-streamed: max_tokens gives finish_reason length; a stop sequence cuts the reply", async () => {
      const full = await client.chat.completions.create({
        model: MODEL,
        messages: hello,
        max_tokens: 30,
        temperature: 0,
      });
      assert.equal(full.object, "chat.completion");
      assert.equal(full.choices[0].finish_reason, "length");
      assert.equal(full.usage?.completion_tokens, 30);
      const text = full.choices[0].message.content!;
      // A letter not right after an incomplete UTF-8 sequence (U+FFFD), which a stop check holds back.
      const chars = [...text];
      const stop = chars.find((ch, i) => i >= 8 && /[a-z]/i.test(ch) && chars[i - 1] !== "\uFFFD")!;
      const cut = await client.chat.completions.create({
        model: MODEL,
        messages: hello,
        max_tokens: 30,
        temperature: 0,
        stop,
      });
      assert.equal(cut.choices[0].finish_reason, "stop");
      assert.equal(cut.choices[0].message.content, text.slice(0, text.indexOf(stop)));
    });

    await t.step("the same seed gives the same reply; another seed another", async () => {
      const ask = async (seed: number) =>
        (await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 20, temperature: 1, seed }))
          .choices[0].message.content;
      assert.equal(await ask(42), await ask(42));
      assert.notEqual(await ask(42), await ask(43));
    });

    await t.step("response_format json_schema gives JSON that parses and fits the schema", async () => {
      const reply = await client.chat.completions.create({
        model: MODEL,
        messages: hello,
        max_tokens: 200,
        seed: 5,
        response_format: {
          type: "json_schema",
          json_schema: {
            name: "answer",
            schema: {
              type: "object",
              properties: { ok: { type: "boolean" }, mood: { enum: ["happy", "sad"] } },
              required: ["ok", "mood"],
            },
          },
        },
      });
      const parsed = JSON.parse(reply.choices[0].message.content!);
      assert.equal(typeof parsed.ok, "boolean");
      assert.ok(["happy", "sad"].includes(parsed.mood));
    });

    await t.step("tool_choice required returns a tool call with JSON arguments", async () => {
      const reply = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "Weather in Paris?" }],
        max_tokens: 300,
        seed: 3,
        tools: [{
          type: "function",
          function: {
            name: "get_weather",
            parameters: { type: "object", properties: { city: { type: "string", maxLength: 10 } }, required: ["city"] },
          },
        }],
        tool_choice: "required",
      });
      assert.equal(reply.choices[0].finish_reason, "tool_calls");
      const call = reply.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      assert.equal(call.function.name, "get_weather");
      assert.equal(typeof JSON.parse(call.function.arguments).city, "string");
    });

    await t.step("two concurrent chats on one model both complete", async () => {
      const [a, b] = await Promise.all(
        [1, 2].map((seed) =>
          client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 40, temperature: 1, seed })
        ),
      );
      assert.equal(a.usage?.completion_tokens, 40);
      assert.equal(b.usage?.completion_tokens, 40);
      assert.notEqual(a.choices[0].message.content, b.choices[0].message.content);
    });

    await t.step(
      "cancellation: the client aborts a long stream, generation stops and the sequence is freed",
      async () => {
        const controller = new AbortController();
        const stream = await client.chat.completions.create(
          { model: MODEL, messages: hello, stream: true, max_tokens: 1900, temperature: 1 },
          { signal: controller.signal },
        );
        let chunks = 0;
        let finish: string | null = null;
        try {
          for await (const chunk of stream) {
            finish = chunk.choices[0]?.finish_reason ?? finish;
            if (++chunks === 5) controller.abort();
          }
        } catch (error) {
          if (!(error instanceof OpenAI.APIUserAbortError)) throw error;
        }
        assert.equal(finish, null, "the stream ended before the reply was finished");
        // The server saw the disconnect: the generation ended as aborted and its sequence is free again.
        let model = (await system()).inference.models.find((m) => m.id === MODEL)!;
        for (let i = 0; i < 100 && (model.generations.aborted === 0 || model.sequences.busy !== 0); i++) {
          await new Promise((r) => setTimeout(r, 50));
          model = (await system()).inference.models.find((m) => m.id === MODEL)!;
        }
        assert.equal(model.generations.aborted, 1);
        assert.equal(model.sequences.busy, 0);
        // The model still answers afterwards.
        const after = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 3 });
        assert.equal(after.usage?.completion_tokens, 3);
      },
    );

    await t.step("/v1/completions and /v1/embeddings (ONNX and GGUF, float and base64)", async () => {
      const completion = await client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 6 });
      assert.equal(completion.object, "text_completion");
      assert.equal(completion.usage?.completion_tokens, 6);
      for (const model of [FIXTURE_MODELS.embedOnnx, FIXTURE_MODELS.embedGguf]) {
        const base64 = await client.embeddings.create({ model, input: ["the cat", "the weather"] });
        assert.equal(base64.data.length, 2);
        assert.ok(Math.abs(Math.hypot(...base64.data[0].embedding) - 1) < 1e-3);
        const float = await client.embeddings.create({ model, input: "the cat", encoding_format: "float" });
        assert.deepEqual(
          float.data[0].embedding.map((v) => v.toFixed(4)),
          base64.data[0].embedding.map((v) => v.toFixed(4)),
        );
      }
    });

    await t.step("unknown model → 404 problem+json; malformed body → 400; context overflow → 400", async () => {
      await assert.rejects(
        client.chat.completions.create({ model: "nobody/nothing", messages: hello }),
        (e: unknown) => e instanceof OpenAI.NotFoundError && e.message.includes("tabagent models pull nobody/nothing"),
      );
      const post = (body: string) =>
        fetch(`${server.url}/v1/chat/completions`, {
          method: "POST",
          headers: { ...server.auth, "content-type": "application/json" },
          body,
        });
      const unknown = await post(JSON.stringify({ model: "nobody/nothing", messages: hello }));
      assert.equal(unknown.status, 404);
      assert.equal(unknown.headers.get("content-type"), "application/problem+json");
      assert.equal((await unknown.json()).code, "not_found");
      const malformed = await post("{not json");
      assert.equal(malformed.status, 400);
      assert.equal(malformed.headers.get("content-type"), "application/problem+json");
      await malformed.body?.cancel();
      const invalid = await post(JSON.stringify({ model: MODEL, messages: [{ role: "wizard", content: "x" }] }));
      assert.equal(invalid.status, 400);
      assert.equal((await invalid.json()).code, "validation_failed");
      const overflow = await post(
        JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "x ".repeat(3000) }] }),
      );
      assert.equal(overflow.status, 400);
      const problem = await overflow.json();
      assert.equal(problem.code, "context_overflow");
      assert.match(problem.detail, /maximum context length is \d+ tokens/);
    });

    await t.step("a new chat that shares a system prompt with another starts from its copy (local build)", async () => {
      const local = !server.logs.some((line) => line.includes('"llama_binding":"prebuilt"'));
      const instruction = "You are a careful assistant for a small bakery. Answer in one sentence, mention the " +
        "opening hours (eight to six), never invent prices, and suggest the sourdough when asked for bread.";
      const ask = (question: string) =>
        client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "system", content: instruction }, { role: "user", content: question }],
          max_tokens: 4,
          temperature: 0,
        });
      const loaded = async () => {
        const body = await (await fetch(`${server.url}/v1/system`, { headers: server.auth })).json() as {
          inference: {
            models: {
              id: string;
              prompt_cache?: { prefix_copies: number };
              native_decode?: { runs: number; steps: number };
            }[];
          };
        };
        return body.inference.models.find((m) => m.id === MODEL);
      };
      const copies = async () => (await loaded())?.prompt_cache?.prefix_copies ?? 0;
      // A long first question, so that the two chats share less than half of what the first one holds.
      await ask(
        "We would like to order a large cake for a wedding of eighty guests next spring, with " +
          "three layers, fresh berries, no nuts at all because of allergies, and a small sugar bride on top.",
      );
      const before = await copies();
      const second = await ask("Do you sell bread?");
      const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
      if (local) {
        assert.equal(await copies(), before + 1);
        assert.ok(cached >= 30, `cached ${cached}`);
        // Plain chat replies came from the binding's native decode loop.
        assert.ok(((await loaded())?.native_decode?.steps ?? 0) > 0);
      } else {
        assert.equal(await copies(), before, "the prebuilt binding has no prefix copy");
        assert.equal((await loaded())?.native_decode, undefined);
      }
    });

    await t.step("/v1/system shows the hardware and the loaded model", async () => {
      const body = await system();
      assert.ok(body.hardware.recommended.threads >= 1);
      assert.equal(body.inference.models.find((m) => m.id === MODEL)?.state, "ready");
      const health = await (await fetch(`${server.url}/v1/health`)).json();
      const inference = health.components.find((c: { name: string }) => c.name === "inference");
      assert.match(inference.detail, /tabagent\/tiny-chat \(ready\)/);
    });
  },
});

Deno.test("/v1/models lists models placed in the cache, shows which are loaded, and deletes a loaded one", async () => {
  await using cache = await fixtureModelCache();
  await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--model-cache-path", cache.path] });
  const list = async () => {
    const res = await fetch(`${server.url}/v1/models`, { headers: server.auth });
    const body = await res.json() as { data: { id: string; downloaded: boolean; loaded: boolean }[] };
    return new Map(body.data.map((m) => [m.id, m]));
  };
  const before = (await list()).get(FIXTURE_MODELS.chat);
  assert.deepEqual([before?.downloaded, before?.loaded], [true, false]);
  const reply = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...server.auth, "content-type": "application/json" },
    body: JSON.stringify({ model: FIXTURE_MODELS.chat, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
  });
  assert.equal(reply.status, 200);
  await reply.body?.cancel();
  const after = (await list()).get(FIXTURE_MODELS.chat);
  assert.deepEqual([after?.downloaded, after?.loaded], [true, true]);

  // Deleting a loaded model unloads it first; afterwards it is gone and chats say how to get it.
  const deleted = await fetch(`${server.url}/v1/models/${FIXTURE_MODELS.chat}`, {
    method: "DELETE",
    headers: server.auth,
  });
  assert.equal(deleted.status, 200);
  await deleted.body?.cancel();
  assert.equal((await list()).has(FIXTURE_MODELS.chat), false);
  const gone = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...server.auth, "content-type": "application/json" },
    body: JSON.stringify({ model: FIXTURE_MODELS.chat, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
  });
  assert.equal(gone.status, 404);
  await gone.body?.cancel();
});

Deno.test("chat with conversation_id stores both sides in memory; memory: true recalls earlier turns", async () => {
  await using cache = await fixtureModelCache();
  await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--model-cache-path", cache.path] });
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.url}${path}`, {
      ...init,
      headers: { ...server.auth, "content-type": "application/json", ...init.headers },
    });
    return { status: res.status, body: await res.json() };
  };
  const conversation = await api("/v1/memory/conversations", {
    method: "POST",
    body: JSON.stringify({ title: "Travel" }),
  });
  assert.equal(conversation.status, 201);
  const id = conversation.body.id as string;

  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.token });
  const extra = { conversation_id: id } as Record<string, unknown>;
  const first = await client.chat.completions.create({
    model: FIXTURE_MODELS.chat,
    messages: [{ role: "user", content: "My train to Lyon leaves at nine" }],
    max_tokens: 4,
    seed: 1,
    ...extra,
  });
  const stream = await client.chat.completions.create({
    model: FIXTURE_MODELS.chat,
    messages: [{ role: "user", content: "Book a hotel near the station" }],
    max_tokens: 3,
    stream: true,
    ...extra,
  });
  let streamed = "";
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";

  const messages = await api(`/v1/memory/conversations/${id}/messages`);
  assert.equal(messages.status, 200);
  const stored = messages.body.items as {
    role: string;
    content: unknown;
    model?: string;
    completion_tokens?: number;
  }[];
  assert.deepEqual(stored.map((m) => m.role), ["user", "assistant", "user", "assistant"]);
  assert.equal(stored[0].content, "My train to Lyon leaves at nine");
  assert.equal(stored[1].content, first.choices[0].message.content);
  assert.equal(stored[1].model, FIXTURE_MODELS.chat);
  assert.equal(stored[1].completion_tokens, first.usage?.completion_tokens);
  assert.equal(stored[3].content, streamed);

  const found = await api(`/v1/memory/search?q=${encodeURIComponent("train Lyon")}`);
  assert.equal(found.body.hits[0].conversation_id, id);

  // memory: true retrieves the earlier turn into the prompt, which the prompt token count shows.
  const question = [{ role: "user" as const, content: "When does my train leave?" }];
  const plain = await client.chat.completions.create({ model: FIXTURE_MODELS.chat, messages: question, max_tokens: 1 });
  const recalled = await client.chat.completions.create({
    model: FIXTURE_MODELS.chat,
    messages: question,
    max_tokens: 1,
    ...({ memory: true } as Record<string, unknown>),
  });
  assert.ok(recalled.usage!.prompt_tokens > plain.usage!.prompt_tokens + 10);
  // the reply cites what it recalled: message ids and snippets, in the last chunk of a stream too
  const citations = (recalled as unknown as { tabagent: { citations: { id: string; snippet: string }[] } })
    .tabagent.citations;
  assert.ok(citations.some((c) => c.id === (stored[0] as { id?: string }).id && c.snippet.includes("Lyon")));
  const cited = await client.chat.completions.create({
    model: FIXTURE_MODELS.chat,
    messages: question,
    max_tokens: 1,
    stream: true,
    ...({ memory: true } as Record<string, unknown>),
  });
  let last: Record<string, unknown> = {};
  for await (const chunk of cited) {
    if (chunk.choices[0]?.finish_reason) last = chunk as unknown as Record<string, unknown>;
  }
  assert.deepEqual((last.tabagent as { citations: unknown[] }).citations, citations);

  const unknown = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...server.auth, "content-type": "application/json" },
    body: JSON.stringify({ model: FIXTURE_MODELS.chat, messages: question, conversation_id: "conv_missing" }),
  });
  assert.equal(unknown.status, 404);
  assert.equal((await unknown.json()).code, "not_found");
});
