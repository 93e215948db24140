import assert from "node:assert/strict";
import { openLocalMemory } from "../local.ts";
import { TabAgentError } from "../../errors/mod.ts";
import { createAnnIndex, loadAnnBackend, METRICS } from "./ann.ts";
import { exactSearch } from "./exact.ts";
import { itemKey } from "./keys.ts";
import { indexStem } from "./vector_index.ts";
import { VectorIndexService } from "./index_service.ts";

const MODEL = "test/embedder";

function randomUnit(dims: number, seed: number): number[] {
  let state = seed;
  const next = () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31) - 0.5;
  const v = Array.from({ length: dims }, next);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

async function withMemory(fn: (dir: string, ids: string[]) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-index-" });
  try {
    const memory = await openLocalMemory({ dir, searchWorkers: 0 });
    const { id } = await memory.createConversation();
    const messages = await memory.appendMessages(
      id,
      Array.from({ length: 40 }, (_, i) => ({ role: "user" as const, content: `message ${i}` })),
    );
    await memory.flush();
    for (const [i, message] of messages.entries()) {
      await memory.putEmbedding({
        item_kind: "message",
        item_id: message.id,
        model: MODEL,
        vector: randomUnit(16, i + 1),
      });
    }
    await memory.close();
    await fn(dir, messages.map((m) => m.id));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const rowId = (id: string) => Number(id.replace(/\D/g, ""));

for (const backend of ["usearch", "hnswlib"] as const) {
  for (const metric of METRICS) {
    Deno.test(`ANN ${backend} (${metric}): finds the exact nearest neighbour, removes and replaces`, async () => {
      await loadAnnBackend(backend);
      const dims = 16;
      const index = createAnnIndex(backend, { dimensions: dims, metric });
      const rows = 200;
      const matrix = new Float32Array(rows * dims);
      for (let i = 0; i < rows; i++) matrix.set(randomUnit(dims, i + 7), i * dims);
      const keys = Array.from({ length: rows }, (_, i) => i + 1000);
      index.addMany(keys, matrix);
      assert.deepEqual(index.size(), rows);
      const query = Float32Array.from(randomUnit(dims, 99));
      const exact = exactSearch(query, matrix, keys, 5, metric);
      assert.deepEqual(index.search(query, 5).keys, exact.keys);
      index.remove(exact.keys[0]);
      assert.ok(!index.has(exact.keys[0]));
      assert.deepEqual(index.search(query, 1).keys[0], exact.keys[1]);
      index.addMany([exact.keys[0]], query);
      assert.deepEqual(index.search(query, 1).keys[0], exact.keys[0]);
      assert.deepEqual(index.size(), rows);
    });
  }
}

Deno.test("VectorIndexService: builds from the store, follows new and deleted embeddings, and persists", async () => {
  await withMemory(async (dir, ids) => {
    const indexes = new VectorIndexService({ storeDir: dir });
    try {
      const first = await indexes.sync(MODEL);
      assert.deepEqual([first.size, first.dimensions, first.opened], [40, 16, "missing"]);
      const hit = await indexes.search(MODEL, randomUnit(16, 3), 1);
      assert.deepEqual(hit.keys, [itemKey("message", rowId(ids[2]))]);

      // a deleted conversation takes its vectors with it (through the outbox), and the index follows
      const memory = await openLocalMemory({ dir, searchWorkers: 0 });
      const conversation = (await memory.getMessage(ids[0])).conversation_id;
      const { id } = await memory.createConversation();
      const [extra] = await memory.appendMessages(id, [{ role: "user", content: "new" }]);
      await memory.flush();
      await memory.putEmbedding({ item_kind: "message", item_id: extra.id, model: MODEL, vector: randomUnit(16, 500) });
      assert.deepEqual((await indexes.search(MODEL, randomUnit(16, 500), 1)).keys, [
        itemKey("message", rowId(extra.id)),
      ]);
      await memory.deleteConversation(conversation);
      await memory.flush();
      await memory.close();
      const after = await indexes.search(MODEL, randomUnit(16, 3), 5);
      assert.deepEqual(after.keys, [itemKey("message", rowId(extra.id))]);
    } finally {
      await indexes.close();
    }
    const reopened = new VectorIndexService({ storeDir: dir });
    try {
      const status = await reopened.sync(MODEL);
      assert.deepEqual([status.opened, status.size], ["loaded", 1]);
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("VectorIndexService: a damaged or stale index file is detected and rebuilt from the store", async () => {
  await withMemory(async (dir) => {
    const indexes = new VectorIndexService({ storeDir: dir });
    await indexes.sync(MODEL);
    await indexes.close();
    const file = `${dir}/index/${await indexStem(MODEL)}.usearch`;
    const bytes = await Deno.readFile(file);
    bytes[bytes.length >> 1] ^= 0xff;
    await Deno.writeFile(file, bytes);
    const damaged = new VectorIndexService({ storeDir: dir });
    try {
      const status = await damaged.sync(MODEL);
      assert.deepEqual([status.opened, status.size], ["damaged", 40]);
      assert.deepEqual((await damaged.search(MODEL, randomUnit(16, 3), 1)).keys.length, 1);
    } finally {
      await damaged.close();
    }
    // a sidecar ahead of the store (the store came back from an older backup) is stale
    const sidecar = `${dir}/index/${await indexStem(MODEL)}.json`;
    const meta = JSON.parse(await Deno.readTextFile(sidecar));
    await Deno.writeTextFile(sidecar, JSON.stringify({ ...meta, seq: meta.seq + 1_000 }));
    const stale = new VectorIndexService({ storeDir: dir });
    try {
      assert.deepEqual((await stale.sync(MODEL)).opened, "stale");
    } finally {
      await stale.close();
    }
  });
});

Deno.test("VectorIndexService: refuses a vector of the wrong size, NaN and an absurd k", async () => {
  await withMemory(async (dir) => {
    const indexes = new VectorIndexService({ storeDir: dir });
    try {
      for (
        const [vector, k] of [[randomUnit(8, 1), 5], [[NaN, ...randomUnit(15, 1)], 5], [[], 5], [
          randomUnit(16, 1),
          0,
        ], [randomUnit(16, 1), 1e9]] as const
      ) {
        const error = await indexes.search(MODEL, [...vector], k).then(() => assert.fail("refused"), (e) => e);
        assert.ok(error instanceof TabAgentError);
        assert.deepEqual(error.code, "validation_failed");
      }
    } finally {
      await indexes.close();
    }
  });
});

Deno.test("VectorIndexService: exact rerank over allowed items and filtered search", async () => {
  await withMemory(async (dir, ids) => {
    const indexes = new VectorIndexService({ storeDir: dir });
    try {
      const allowed = ids.slice(10, 20).map((id) => itemKey("message", rowId(id)));
      const query = randomUnit(16, 3); // message 2, not allowed
      const exact = await indexes.search(MODEL, query, 3, { allowed, exact: true });
      const walked = await indexes.search(MODEL, query, 3, { allowed });
      assert.deepEqual(exact.keys.length, 3);
      assert.ok(exact.keys.every((key) => allowed.includes(key)));
      assert.deepEqual(walked.keys, exact.keys);
    } finally {
      await indexes.close();
    }
  });
});
