import { DatabaseSync } from "node:sqlite";
import { assertEquals } from "./_assert.ts";
import { memoryClientSuite } from "./_client_suite.ts";
import { openLocalMemory } from "./local.ts";

memoryClientSuite("LocalMemory", (dir) => openLocalMemory({ dir }));

Deno.test("LocalMemory: derived stores that lost data are rebuilt from the truth stores", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-memory-" });
  try {
    const memory = await openLocalMemory({ dir });
    const { id } = await memory.createConversation();
    await memory.appendMessages(id, [{ role: "user", content: "remember the milk" }, {
      role: "user",
      content: "eggs",
    }]);
    await memory.addFact({ text: "the user buys milk on Mondays" });
    await memory.flush();
    assertEquals(await memory.checkDerived(), []);
    await memory.close();

    // Lose the derived embedding queue (as if embeddings.db came from an older backup).
    const db = new DatabaseSync(`${dir}/embeddings.db`);
    db.exec("DELETE FROM pending");
    db.close();
    const reopened = await openLocalMemory({ dir, outbox: false });
    try {
      assertEquals(await reopened.checkDerived(), [
        "2 message(s) neither embedded nor queued",
        "1 fact(s) neither embedded nor queued",
      ]);
      await reopened.rebuildDerived();
      assertEquals(await reopened.checkDerived(), []);
      assertEquals((await reopened.searchMessages({ query: "milk" })).length, 1);
    } finally {
      await reopened.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
