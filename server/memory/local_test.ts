import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { WAL_AUTOCHECKPOINT_PAGES } from "./_checkpoint.ts";
import { memoryClientSuite } from "./testing/client_suite.ts";
import { openLocalMemory } from "./local.ts";
import { applicationId, MIGRATIONS, storeFile } from "./stores.ts";

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
    assert.deepEqual(await memory.checkDerived(), []);
    await memory.close();

    // Lose the derived embedding queue (as if embeddings.db came from an older backup).
    const db = new DatabaseSync(`${dir}/embeddings.db`);
    db.exec("DELETE FROM pending");
    db.close();
    const reopened = await openLocalMemory({ dir, outbox: false });
    try {
      assert.deepEqual(await reopened.checkDerived(), [
        "2 message(s) neither embedded nor queued",
        "1 fact(s) neither embedded nor queued",
      ]);
      await reopened.rebuildDerived();
      assert.deepEqual(await reopened.checkDerived(), []);
      assert.deepEqual((await reopened.searchMessages({ query: "milk" })).length, 1);
    } finally {
      await reopened.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalMemory: a conversations store from schema v1 (trigger-kept index and counts) upgrades in place", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-memory-" });
  try {
    const v1 = new DatabaseSync(`${dir}/${storeFile("conversations")}`);
    v1.exec(MIGRATIONS.conversations[0]);
    v1.exec(`PRAGMA application_id = ${applicationId("conversations")}; PRAGMA user_version = 1`);
    v1.exec("INSERT INTO conversations(id, created_at, updated_at) VALUES ('conv_old', 1000, 1000)");
    const insert = v1.prepare("INSERT INTO messages(conversation_id, role, content, created_at) VALUES (?, ?, ?, ?)");
    insert.run("conv_old", "user", "the lighthouse keeper", 2000);
    insert.run("conv_old", "assistant", "kept the lamp burning", 3000);
    v1.close();

    const memory = await openLocalMemory({ dir, outbox: false });
    try {
      const old = await memory.getConversation("conv_old");
      assert.deepEqual([old.message_count, old.updated_at], [2, new Date(3000).toISOString()]);
      assert.deepEqual((await memory.searchMessages({ query: "lighthouse" })).length, 1);

      const [added] = await memory.appendMessages("conv_old", [{ role: "user", content: "and the lighthouse cat" }]);
      assert.deepEqual((await memory.getConversation("conv_old")).message_count, 3);
      const hits = await memory.searchMessages({ query: "lighthouse" });
      assert.deepEqual(hits.map((hit) => hit.message.id).sort(), ["msg_1", added.id].sort());

      await memory.deleteConversation("conv_old");
      await memory.flush();
      assert.deepEqual(await memory.checkDerived(), []);
      assert.deepEqual(await memory.searchMessages({ query: "lighthouse" }), []);
      assert.deepEqual((await memory.stats()).stores.find((s) => s.name === "conversations")?.schema_version, 3);
    } finally {
      await memory.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalMemory: messages appended one by one are searchable at once; an index backlog on disk is caught up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-memory-" });
  try {
    const memory = await openLocalMemory({ dir, outbox: false });
    const { id } = await memory.createConversation();
    for (let i = 0; i < 5; i++) await memory.appendMessages(id, [{ role: "user", content: `note ${i} about otters` }]);
    assert.deepEqual((await memory.searchMessages({ query: "otters", limit: 10 })).length, 5);
    await memory.appendMessages(id, [{ role: "user", content: "one more otters note" }]);
    // The backup copies the files as they are: the last append is committed but not yet indexed.
    const copy = await Deno.makeTempDir({ prefix: "tabagent-memory-copy-" });
    try {
      await memory.backup(copy);
      await memory.close();
      const reopened = await openLocalMemory({ dir: copy, outbox: false });
      try {
        assert.deepEqual(await reopened.checkDerived(), [
          "6 message(s) neither embedded nor queued",
          "1 message(s) not yet in the full-text index",
        ]);
        assert.deepEqual((await reopened.searchMessages({ query: "otters", limit: 10 })).length, 6);
        await reopened.flush();
        assert.deepEqual(await reopened.checkDerived(), []);
      } finally {
        await reopened.close();
      }
    } finally {
      await Deno.remove(copy, { recursive: true });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalMemory: committed messages reach the store file in the background and the WAL stays bounded under reads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-memory-" });
  try {
    const memory = await openLocalMemory({ dir, outbox: false, searchWorkers: 0 });
    const messages = 3_000;
    try {
      const { id } = await memory.createConversation();
      for (let i = 0; i < messages; i++) {
        const content = `message ${i} about the weather in town ${i}`;
        const [stored] = await memory.appendMessages(id, [{ role: "user", content }]);
        // Reads between writes, as when a chat is stored and shown: no reader may pin the WAL.
        assert.deepEqual((await memory.getMessage(stored.id)).content, content);
      }
      const probe = new DatabaseSync(`${dir}/conversations.db`, { readOnly: true });
      const pageSize = (probe.prepare("PRAGMA page_size").get() as { page_size: number }).page_size;
      probe.close();
      const walBytes = (await Deno.stat(`${dir}/conversations.db-wal`)).size;
      assert.ok(
        walBytes <= (WAL_AUTOCHECKPOINT_PAGES + 64) * (pageSize + 24),
        `the WAL grew to ${walBytes} bytes`,
      );
      // With no more commits, only the checkpoint worker can copy the WAL into the file: a copy of
      // the file alone soon holds every message.
      // Looked at again each time the checkpoint writes the file (watched before the first look).
      using watcher = Deno.watchFs(`${dir}/conversations.db`);
      const writes = watcher[Symbol.asyncIterator]();
      const copy = await Deno.makeTempFile({ prefix: "tabagent-alone-", suffix: ".db" });
      let found = -1;
      try {
        for (let writesSeen = 0; writesSeen < 1_000; writesSeen++) {
          await Deno.copyFile(`${dir}/conversations.db`, copy);
          try {
            const alone = new DatabaseSync(copy, { readOnly: true });
            found = (alone.prepare("SELECT count(*) AS n FROM messages").get() as { n: number }).n;
            alone.close();
          } catch {
            found = -1; // copied mid-checkpoint; try again
          }
          if (found === messages) break;
          let event;
          do event = await writes.next(); while (!event.done && event.value.kind !== "modify");
          if (event.done) break;
        }
      } finally {
        await Deno.remove(copy);
      }
      assert.deepEqual(found, messages);
    } finally {
      await memory.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalMemory: an import cut off before its summaries committed is completed by importing again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-import-" });
  try {
    const source = await openLocalMemory({ dir: `${dir}/source`, searchWorkers: 0 });
    const { id } = await source.createConversation({ title: "summarised" });
    const messages = await source.appendMessages(id, [
      { role: "user", content: "one" },
      { role: "assistant", content: "two" },
      { role: "user", content: "three" },
    ]);
    await source.putSummary({
      conversation_id: id,
      from_message_id: messages[1].id,
      to_message_id: messages[2].id,
      text: "two and three",
    });
    const lines: string[] = [];
    for await (const line of source.exportJsonl()) lines.push(line);
    await source.close();

    const target = await openLocalMemory({ dir: `${dir}/target`, searchWorkers: 0 });
    try {
      assert.deepEqual((await target.importJsonl(lines.join("\n"))).imported.summary, 1);
      // The process died after the truth stores committed and before the summaries store did.
      const summaries = new DatabaseSync(`${dir}/target/${storeFile("summaries")}`);
      summaries.exec("DELETE FROM summaries");
      summaries.close();
      assert.deepEqual((await target.listSummaries(id)).items, []);

      const again = await target.importJsonl(lines.join("\n"));
      assert.deepEqual(again.imported, { summary: 1 });
      assert.deepEqual(again.skipped, { conversation: 1, message: 3 });
      const [summary] = (await target.listSummaries(id)).items;
      const copied = (await target.listMessages(id)).items;
      assert.deepEqual([summary.text, summary.from_message_id, summary.to_message_id], [
        "two and three",
        copied[1].id,
        copied[2].id,
      ]);
      assert.deepEqual((await target.importJsonl(lines.join("\n"))).imported, {});
    } finally {
      await target.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
