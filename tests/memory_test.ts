/** End-to-end: memory through the real server process, over loopback HTTP, and the CLI commands. */
import { DatabaseSync } from "node:sqlite";
import assert from "node:assert/strict";
import { pathExists } from "../server/fs/mod.ts";
import { runCli, startServer } from "./_server.ts";

/** The CLI, as the memory tests call it. */
const tabagent = (...args: string[]) => runCli(args);

Deno.test("memory over HTTP: conversations, messages, search, stats, export/import, backup/restore", async () => {
  // no knowledge graph here: the export below lists exactly what was written (tests/weaver_test.ts covers the graph)
  await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--weaver", "off"] });
  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...server.auth, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get("content-type") ?? "", text, json: text ? tryJson(text) : null };
  };
  const ready = server.logs.map((line) => tryJson(line)).find((record) => record?.msg === "memory ready");
  assert.ok(ready?.grpc_address?.startsWith("unix:"), "the log names the gRPC address");

  const created = await api("POST", "/v1/memory/conversations", { title: "Trip to Lyon" });
  assert.deepEqual(created.status, 201);
  const id = created.json.id;
  const appended = await api("POST", `/v1/memory/conversations/${id}/messages`, {
    messages: [
      { role: "user", content: "Find a train to Lyon on Friday" },
      { role: "assistant", content: "The 9:04 train reaches Lyon at 11:00", model: "tiny" },
    ],
  });
  assert.deepEqual(appended.status, 201);
  assert.deepEqual(appended.json.items.map((m: { role: string }) => m.role), ["user", "assistant"]);
  const messageId = appended.json.items[1].id;
  assert.deepEqual((await api("GET", `/v1/memory/messages/${messageId}`)).json.model, "tiny");
  const page = await api("GET", `/v1/memory/conversations/${id}/messages?limit=1`);
  assert.deepEqual(page.json.items.length, 1);
  const next = await api("GET", `/v1/memory/conversations/${id}/messages?limit=1&cursor=${page.json.next_cursor}`);
  assert.deepEqual(next.json.items[0].id, messageId);
  assert.deepEqual(next.json.next_cursor, null);
  const search = await api("GET", "/v1/memory/search?q=train%20lyon&limit=5");
  assert.deepEqual(search.status, 200);
  assert.deepEqual(search.json.hits.length, 2);
  assert.ok(search.json.hits[0].snippet.includes("**"));
  assert.deepEqual((await api("PATCH", `/v1/memory/conversations/${id}`, { title: "Lyon" })).json.title, "Lyon");
  assert.deepEqual((await api("GET", "/v1/memory/conversations")).json.items[0].id, id);

  // Bad input: the field is named; unknown ids are 404; too much content is 413.
  const bad = await api("POST", `/v1/memory/conversations/${id}/messages`, {
    messages: [{ role: "user", content: "ok" }, { role: "robot", content: "x" }],
  });
  assert.deepEqual(bad.status, 400);
  assert.deepEqual(bad.type, "application/problem+json");
  assert.deepEqual(bad.json.errors[0].field, "messages.1.role");
  assert.deepEqual((await api("GET", "/v1/memory/conversations/conv_nope")).status, 404);
  assert.deepEqual((await api("GET", "/v1/memory/messages/msg_424242")).status, 404);
  assert.deepEqual((await api("GET", "/v1/memory/conversations?limit=0")).json.errors[0].field, "limit");
  assert.deepEqual((await api("GET", "/v1/memory/conversations?cursor=abc")).status, 400);
  const huge = await api("POST", `/v1/memory/conversations/${id}/messages`, {
    messages: [{ role: "user", content: "x".repeat(5 * 1024 * 1024) }],
  });
  assert.deepEqual(huge.status, 413);
  assert.deepEqual((await fetch(`${server.url}/v1/memory/stats`)).status, 401);

  const stats = await api("GET", "/v1/memory/stats");
  assert.deepEqual([stats.json.conversations, stats.json.messages, stats.json.stores.length], [1, 2, 7]);

  const exported = await api("GET", "/v1/memory/export");
  assert.deepEqual(exported.type, "application/x-ndjson");
  assert.deepEqual(exported.text.trim().split("\n").map((line) => JSON.parse(line).record), [
    "conversation",
    "message",
    "message",
  ]);
  const reimport = await api("POST", "/v1/memory/import", exported.text, { "content-type": "application/x-ndjson" });
  assert.deepEqual(reimport.json.skipped, { conversation: 1, message: 2 });

  if (Deno.build.os !== "windows") {
    // A drive-letter path is a relative name on POSIX: refused, not written beside the server.
    const drive = await api("POST", "/v1/memory/backup", { dir: "A:\\backup" });
    assert.deepEqual([drive.status, drive.json.errors?.[0]?.field], [400, "dir"]);
    assert.ok(!(await pathExists("A:\\backup")) && !(await pathExists(`${server.dataDir}/A:\\backup`)));
  }
  const backup = await api("POST", "/v1/memory/backup");
  assert.deepEqual(backup.status, 201);
  assert.ok(backup.json.dir.startsWith(`${server.dataDir}/backups/`));
  assert.deepEqual(backup.json.files.length, 7);
  assert.deepEqual((await api("DELETE", `/v1/memory/conversations/${id}`)).status, 204);
  assert.deepEqual((await api("GET", `/v1/memory/conversations/${id}`)).status, 404);
  const damaged = `${server.dataDir}/damaged`;
  await Deno.mkdir(damaged);
  for await (const entry of Deno.readDir(backup.json.dir)) {
    await Deno.copyFile(`${backup.json.dir}/${entry.name}`, `${damaged}/${entry.name}`);
  }
  await Deno.writeTextFile(`${damaged}/knowledge.db`, "garbage", { append: true });
  const refused = await api("POST", "/v1/memory/restore", { dir: damaged });
  assert.deepEqual(refused.status, 422);
  assert.ok(refused.json.detail.includes("knowledge.db"));
  assert.deepEqual((await api("GET", `/v1/memory/conversations/${id}`)).status, 404);
  assert.deepEqual((await api("POST", "/v1/memory/restore", { dir: "relative" })).json.errors[0].field, "dir");
  assert.deepEqual((await api("POST", "/v1/memory/restore", { dir: backup.json.dir })).status, 200);
  assert.deepEqual((await api("GET", `/v1/memory/conversations/${id}`)).json.title, "Lyon");
  assert.deepEqual((await api("GET", "/v1/memory/search?q=friday")).json.hits.length, 1);

  const doc = (await api("GET", "/api-doc/openapi.json")).json;
  for (const path of ["/v1/memory/conversations/{id}/messages", "/v1/memory/search", "/v1/memory/backup"]) {
    assert.ok(path in doc.paths, `${path} is documented`);
  }
});

Deno.test("memory over HTTP with --memory-backend grpc goes through the DatabaseService", async () => {
  await using server = await startServer({
    args: ["--mode", "http", "--no-ml", "--memory-backend", "grpc", "--memory-grpc-address", "127.0.0.1:0"],
  });
  const headers = { ...server.auth, "content-type": "application/json" };
  const created = await (await fetch(`${server.url}/v1/memory/conversations`, {
    method: "POST",
    headers,
    body: JSON.stringify({ title: "remote" }),
  })).json();
  const appended = await fetch(`${server.url}/v1/memory/conversations/${created.id}/messages`, {
    method: "POST",
    headers,
    body: JSON.stringify({ messages: [{ role: "user", content: [{ type: "text", text: "over grpc" }] }] }),
  });
  assert.deepEqual(appended.status, 201);
  const hits = await (await fetch(`${server.url}/v1/memory/search?q=grpc`, { headers })).json();
  assert.deepEqual(hits.hits[0].message.content, [{ type: "text", text: "over grpc" }]);
  const missing = await fetch(`${server.url}/v1/memory/conversations/conv_missing`, { headers });
  assert.deepEqual(missing.status, 404);
  await missing.body?.cancel();
  const ready = server.logs.map((line) => tryJson(line)).find((record) => record?.msg === "memory ready");
  assert.deepEqual(ready?.backend, "grpc");
  assert.ok(/^127\.0\.0\.1:\d+$/.test(ready?.grpc_address), ready?.grpc_address);
});

Deno.test("the server refuses to start on a damaged, foreign or newer database, naming the file", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-refuse-" });
  try {
    const db = `${dataDir}/tabagent_db`;
    {
      await using server = await startServer({ dataDir, args: ["--mode", "http", "--no-ml"] });
      await server.stop();
    }
    const cases: [string, () => void | Promise<void>, RegExp][] = [
      ["garbage", () => Deno.writeTextFile(`${db}/conversations.db`, "not a database ".repeat(500)), /not a SQLite/],
      ["foreign", () => {
        const other = new DatabaseSync(`${db}/knowledge.db`);
        other.exec("PRAGMA application_id = 1234; CREATE TABLE IF NOT EXISTS photos(x)");
        other.close();
      }, /not a TabAgent 'knowledge' store/],
      ["newer", () => {
        const newer = new DatabaseSync(`${db}/meta.db`);
        newer.exec("PRAGMA user_version = 99");
        newer.close();
      }, /schema version 99, newer/],
      ["swapped", async () => {
        await Deno.copyFile(`${db}/experience.db`, `${db}/summaries.db`);
      }, /holds TabAgent's 'experience' store, not 'summaries'/],
    ];
    for (const [name, damage, message] of cases) {
      const pristine = `${dataDir}/pristine`;
      await Deno.remove(pristine, { recursive: true }).catch(() => {});
      await Deno.mkdir(pristine);
      for await (const entry of Deno.readDir(db)) {
        if (entry.isFile) await Deno.copyFile(`${db}/${entry.name}`, `${pristine}/${entry.name}`);
      }
      await damage();
      const before = await Deno.readFile(`${db}/${name === "garbage" ? "conversations" : "knowledge"}.db`);
      const run = await tabagent("serve", "--mode", "http", "--no-ml", "--port", "0", "--data-dir", dataDir);
      assert.deepEqual(run.code, 1, `${name}: ${run.stderr}`);
      assert.ok(message.test(run.stderr), `${name}: ${run.stderr}`);
      assert.ok(run.stderr.includes(db), `${name}: the message names the file`);
      const after = await Deno.readFile(`${db}/${name === "garbage" ? "conversations" : "knowledge"}.db`);
      assert.deepEqual(after, before, `${name}: the file was left as it was`);
      for await (const entry of Deno.readDir(pristine)) {
        await Deno.copyFile(`${pristine}/${entry.name}`, `${db}/${entry.name}`);
      }
    }
    const readOnly = await tabagent(
      "serve",
      "--mode",
      "http",
      "--no-ml",
      "--port",
      "0",
      "--data-dir",
      dataDir,
      "--db-path",
      "/sys/tabagent_db",
    );
    assert.deepEqual(readOnly.code, 1);
    assert.ok(readOnly.stderr.includes("/sys/tabagent_db is not writable"), readOnly.stderr);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("tabagent backup and restore work on the files and through a running server", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-cli-" });
  try {
    let conversation: string;
    {
      await using server = await startServer({ dataDir, args: ["--mode", "http", "--no-ml"] });
      const res = await fetch(`${server.url}/v1/memory/conversations`, {
        method: "POST",
        headers: { ...server.auth, "content-type": "application/json" },
        body: JSON.stringify({ title: "keep me" }),
      });
      conversation = (await res.json()).id;
      const online = await tabagent("backup", `${dataDir}/online`, "--data-dir", dataDir);
      assert.deepEqual(online.code, 0, online.stderr);
      assert.ok(online.stdout.includes("via the server"), online.stdout);
      await server.stop();
    }
    const offline = await tabagent("backup", `${dataDir}/offline`, "--data-dir", dataDir);
    assert.deepEqual(offline.code, 0, offline.stderr);
    assert.ok(offline.stdout.includes("7 stores") && offline.stdout.includes("via the files"), offline.stdout);
    const manifest = JSON.parse(await Deno.readTextFile(`${dataDir}/offline/manifest.json`));
    assert.deepEqual(manifest.files.length, 7);

    await Deno.writeTextFile(`${dataDir}/offline/meta.db`, "x", { append: true });
    const refused = await tabagent("restore", `${dataDir}/offline`, "--data-dir", dataDir);
    assert.deepEqual(refused.code, 1);
    assert.ok(refused.stderr.includes("meta.db") && refused.stderr.includes("not changed"), refused.stderr);
    assert.deepEqual((await tabagent("restore", "--data-dir", dataDir)).code, 2);

    await Deno.remove(`${dataDir}/tabagent_db`, { recursive: true });
    const restored = await tabagent("restore", `${dataDir}/online`, "--data-dir", dataDir);
    assert.deepEqual(restored.code, 0, restored.stderr);
    await using server = await startServer({ dataDir, args: ["--mode", "http", "--no-ml"] });
    const res = await fetch(`${server.url}/v1/memory/conversations/${conversation}`, { headers: server.auth });
    assert.deepEqual((await res.json()).title, "keep me");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

// deno-lint-ignore no-explicit-any
function tryJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return null; // a non-JSON line (a crash trace) is simply not a record
  }
}

Deno.test("an import larger than the default body limit is accepted up to the import limit", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const now = new Date().toISOString();
  const lines = [JSON.stringify({
    record: "conversation",
    id: "conv_big_import",
    title: "big",
    metadata: null,
    created_at: now,
    updated_at: now,
  })];
  // Three messages of 3 MiB: 9 MiB in all, over the 8 MiB default and under the 64 MiB import limit.
  for (let i = 1; i <= 3; i++) {
    lines.push(JSON.stringify({
      record: "message",
      id: `msg_${i}`,
      conversation_id: "conv_big_import",
      role: "user",
      content: String(i).repeat(3 * 1024 * 1024),
      model: null,
      tool_calls: null,
      tool_call_id: null,
      prompt_tokens: null,
      completion_tokens: null,
      metadata: null,
      created_at: now,
    }));
  }
  const res = await fetch(`${server.url}/v1/memory/import`, {
    method: "POST",
    headers: { ...server.auth, "content-type": "application/x-ndjson" },
    body: lines.join("\n"),
  });
  const body = await res.json();
  assert.deepEqual(res.status, 200, JSON.stringify(body));
  assert.deepEqual(body.imported, { conversation: 1, message: 3 });
});

Deno.test("a streamed import with a bad line in the middle answers problem+json naming the line and writes nothing", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const now = new Date().toISOString();
  const line = (i: number) =>
    i === 500 ? '{"record":"conversation","id":"bad line"' : JSON.stringify({
      record: "conversation",
      id: `conv_stream_${i}`,
      title: `streamed ${i}`,
      metadata: null,
      created_at: now,
      updated_at: now,
    });
  // A body without Content-Length, sent a hundred lines a chunk as the server reads it.
  let next = 1;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next > 1_000) return controller.close();
      const lines = Array.from({ length: 100 }, () => line(next++));
      controller.enqueue(new TextEncoder().encode(lines.join("\n") + "\n"));
    },
  });
  const res = await fetch(`${server.url}/v1/memory/import`, {
    method: "POST",
    headers: { ...server.auth, "content-type": "application/x-ndjson" },
    body,
  });
  assert.deepEqual([res.status, res.headers.get("content-type")], [400, "application/problem+json"]);
  const problem = await res.json();
  assert.deepEqual([problem.code, problem.errors[0].field], ["validation_failed", "line 500"]);
  const stats = await fetch(`${server.url}/v1/memory/stats`, { headers: server.auth });
  assert.deepEqual((await stats.json()).conversations, 0);
});

Deno.test("memory over HTTP: messages are embedded in the background and POST /v1/memory/query finds them by meaning", async () => {
  const models = new URL("./.fixtures/models", import.meta.url).pathname;
  await using server = await startServer({ args: ["--mode", "http", "--no-ml", "--model-cache-path", models] });
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...server.auth, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, type: res.headers.get("content-type") ?? "", json: await res.json() };
  };
  const { json: conversation } = await api("POST", "/v1/memory/conversations", { title: "pets" });
  const { json: appended } = await api("POST", `/v1/memory/conversations/${conversation.id}/messages`, {
    messages: [
      { role: "user", content: "We adopted a grey rescue greyhound named Biscuit last spring." },
      { role: "user", content: "The printer at work is jammed again." },
      { role: "user", content: "Book a table for two on Saturday evening." },
    ],
  });
  // the embedding writer works through the queue in the background; stats show the backlog
  const embedded = async (count: number) => {
    for (let tries = 0; (await api("GET", "/v1/memory/stats")).json.embeddings < count; tries++) {
      assert.ok(tries < 600, `not embedded: ${server.logs.filter((l) => /warn|error/.test(l)).slice(-3)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual((await api("GET", "/v1/memory/stats")).json.pending_embeddings, 0);
  };
  await embedded(3);
  const found = await api("POST", "/v1/memory/query", { query: "tell me about our pet dog", k: 2 });
  assert.deepEqual(found.status, 200);
  assert.deepEqual(found.json.used.vector, true);
  assert.deepEqual(found.json.hits[0].id, appended.items[0].id);
  assert.ok(found.json.hits[0].vector_rank === 1 && found.json.hits[0].keyword_rank === null);

  for (const bad of [{ query: "" }, { query: "dog", k: 100_000 }, { query: "dog", vector: [0.5, 0.5] }, { k: 3 }]) {
    const refused = await api("POST", "/v1/memory/query", bad);
    assert.deepEqual([refused.status, refused.type], [400, "application/problem+json"], JSON.stringify(bad));
  }
  assert.ok("/v1/memory/query" in (await api("GET", "/api-doc/openapi.json")).json.paths);

  // a page brought into the chat is kept, embedded, found by meaning and cited by URL; then forgotten
  const page = await api("POST", "/v1/memory/documents", {
    conversation_id: conversation.id,
    url: "https://example.org/greyhounds",
    title: "Living with a retired racing dog",
    text: "Retired racing greyhounds are gentle and sleep most of the day. They need a coat in winter.",
  });
  assert.deepEqual(page.status, 201);
  await embedded(4);
  const read = await api("POST", "/v1/memory/query", {
    query: "what did I read about dogs in cold weather?",
    stores: ["documents"],
  });
  assert.deepEqual(read.json.hits[0].document.url, "https://example.org/greyhounds");
  assert.deepEqual(
    (await fetch(`${server.url}/v1/memory/documents/${page.json.id}`, { method: "DELETE", headers: server.auth }))
      .status,
    204,
  );
  assert.deepEqual((await api("GET", `/v1/memory/documents/${page.json.id}`)).status, 404);

  // a tool call's outcome is recorded, embedded like the rest and found when the query asks for tool results
  const tool = await api("POST", "/v1/memory/tool-results", {
    tool_name: "get_forecast",
    arguments: { city: "Lyon" },
    result: { summary: "Heavy showers and thunderstorms all afternoon" },
    status: "ok",
    duration_ms: 120,
    conversation_id: conversation.id,
  });
  assert.deepEqual(tool.status, 201, JSON.stringify(tool.json));
  assert.deepEqual((await api("GET", `/v1/memory/tool-results/${tool.json.id}`)).json.tool_name, "get_forecast");
  // the three messages and the tool result (the page's chunk has gone with the page)
  for (let tries = 0;; tries++) {
    const { json: stats } = await api("GET", "/v1/memory/stats");
    if (stats.embeddings === 4 && stats.pending_embeddings === 0 && stats.outbox_pending === 0) break;
    assert.ok(tries < 600, `not embedded: ${JSON.stringify(stats)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const rain = await api("POST", "/v1/memory/query", { query: "will I need an umbrella?", stores: ["tool_results"] });
  assert.deepEqual(rain.json.hits.map((h: { id: string }) => h.id), [tool.json.id]);
  assert.deepEqual(rain.json.hits[0].kind, "tool_result");
  assert.deepEqual(rain.json.used.vector, true);
  const refused = await api("POST", "/v1/memory/tool-results", { tool_name: "x", status: "maybe", duration_ms: 1 });
  assert.deepEqual([refused.status, refused.type], [400, "application/problem+json"]);
});
