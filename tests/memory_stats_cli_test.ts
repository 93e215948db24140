/** End-to-end: `tabagent memory stats` reads the files without a server, and asks the server when one runs. */
import assert from "node:assert/strict";
import { openLocalMemory } from "../server/memory/local.ts";
import type { MemoryStats } from "../server/memory/types.ts";
import { runCli, startServer } from "./_server.ts";

const MODEL = "test/random-8";

function unit(seed: number): number[] {
  const v = Array.from({ length: 8 }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

type Printed = MemoryStats & { via: string; db_path: string };

async function statsJson(dataDir: string): Promise<Printed> {
  const out = await runCli(["memory", "stats", "--json", "--data-dir", dataDir]);
  assert.deepEqual(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

Deno.test("tabagent memory stats: counts, embedding backlog and index state, from the files and from a running server", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-stats-cli-" });
  try {
    const missing = await runCli(["memory", "stats", "--data-dir", dataDir]);
    assert.deepEqual(missing.code, 1);
    assert.ok(missing.stderr.includes("No memory stores"), missing.stderr);
    const usage = await runCli(["memory", "shrink", "--data-dir", dataDir]);
    assert.deepEqual(usage.code, 2);

    // a memory with a bit of everything; the messages have vectors of a test model, indexed and saved
    const dbPath = `${dataDir}/tabagent_db`;
    let memory = await openLocalMemory({ dir: dbPath, searchWorkers: 0, embeddingModel: MODEL });
    const { id } = await memory.createConversation({ title: "stats" });
    const messages = await memory.appendMessages(id, [
      { role: "user", content: "first" },
      { role: "assistant", content: "second" },
      { role: "user", content: "third" },
    ]);
    await memory.addDocument({ conversation_id: id, url: "https://example.org/a", title: "A", text: "Some page." });
    await memory.recordToolResult({ tool_name: "clock", result: "12:00", status: "ok", duration_ms: 1 });
    await memory.flush();
    for (const [i, message] of messages.slice(0, 2).entries()) {
      await memory.putEmbedding({ item_kind: "message", item_id: message.id, model: MODEL, vector: unit(i) });
    }
    await memory.embedPending(); // no embedder: this only brings the index up to date, and close saves it
    await memory.close();
    // one more vector after the index was saved: the index has it to catch up
    memory = await openLocalMemory({ dir: dbPath, searchWorkers: 0, outbox: false, embeddingModel: MODEL });
    await memory.putEmbedding({ item_kind: "message", item_id: messages[2].id, model: MODEL, vector: unit(2) });
    await memory.close();

    const files = await statsJson(dataDir);
    assert.deepEqual(files.via, "files");
    assert.deepEqual(
      [files.conversations, files.messages, files.documents, files.document_chunks, files.tool_results],
      [1, 3, 1, 1, 1],
    );
    assert.deepEqual([files.embeddings, files.pending_embeddings, files.outbox_pending], [3, 2, 0]);
    assert.deepEqual(files.pending_by_kind, { chunk: 1, tool_result: 1 });
    assert.deepEqual(files.indexes, [{
      model: MODEL,
      vectors: 3,
      dimensions: 8,
      state: "saved",
      backend: "usearch",
      indexed: 2,
      behind: 1,
      unsaved: null,
    }]);
    const text = await runCli(["memory", "stats", "--data-dir", dataDir]);
    assert.deepEqual(text.code, 0, text.stderr);
    assert.ok(/documents\s+1 \(1 chunks\)/.test(text.stdout), text.stdout);
    assert.ok(/waiting to embed\s+2 \(chunk 1, tool_result 1\)/.test(text.stdout), text.stdout);
    assert.ok(text.stdout.includes(`${MODEL}: 3 vectors, 8-d; saved (usearch), 2 indexed, 1 change(s) to catch up`));

    // with a server on the data dir (no embedding model there) the answer comes from it; a query
    // opens the index, which catches up
    await using server = await startServer({ dataDir, args: ["--mode", "http", "--no-ml"] });
    const res = await fetch(`${server.url}/v1/memory/query`, {
      method: "POST",
      headers: { ...server.auth, "content-type": "application/json" },
      body: JSON.stringify({ query: "third", model: MODEL, vector: unit(2), mode: "vector", k: 1 }),
    });
    assert.deepEqual(res.status, 200);
    assert.deepEqual((await res.json()).hits[0].id, messages[2].id);
    const live = await statsJson(dataDir);
    assert.deepEqual(live.via, "server");
    assert.deepEqual([live.messages, live.embeddings, live.pending_embeddings], [3, 3, 2]);
    const [index] = live.indexes;
    assert.deepEqual([index.state, index.indexed, index.behind, index.vectors], ["open", 3, 0, 3]);
    const http = await fetch(`${server.url}/v1/memory/stats`, { headers: server.auth });
    assert.deepEqual((await http.json()).indexes[0].state, "open");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
