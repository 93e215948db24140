/**
 * kill -9 while memories are being embedded and indexed: after a restart the embeddings store and
 * the vector index converge (every message embedded once, the index holding exactly the stored
 * vectors, whatever file state the kill left).
 */
import assert from "node:assert/strict";
import { openLocalMemory } from "../local.ts";
import { loadMiniLm, MINILM } from "../testing/minilm.ts";

const CHILD = new URL("./testing/crash_indexer.ts", import.meta.url);
const CONFIG = new URL("../../../deno.json", import.meta.url);
const ROUNDS = 3;

Deno.test("vector index: SIGKILLs during embedding and indexing converge after restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-index-crash-" });
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", CONFIG.pathname, CHILD.pathname, `${dir}/db`, MINILM, String(round)],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const killAfter = 6 + Math.floor(Math.random() * 20);
      let acks = 0;
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        acks += chunk.split("\n").length - 1;
        if (acks >= killAfter) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 50));
          child.kill("SIGKILL");
          break;
        }
      }
      assert.deepEqual((await child.status).signal, "SIGKILL");
    }
    const minilm = await loadMiniLm();
    const memory = await openLocalMemory({ dir: `${dir}/db`, searchWorkers: 0, embed: minilm.embed });
    try {
      await memory.embedPending();
      const stats = await memory.stats();
      assert.deepEqual(await memory.checkDerived(), []);
      assert.deepEqual(stats.pending_embeddings, 0);
      assert.deepEqual(stats.embeddings, stats.messages);
      const [index] = await memory.indexStatus();
      assert.deepEqual(index.size, stats.embeddings);
      const { hits, used } = await memory.query({ query: "note about a lighthouse", k: 3, mode: "vector" });
      assert.ok(used.vector && hits.length === 3);
    } finally {
      await memory.close();
      await minilm.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
