import assert from "node:assert/strict";
import { createLogger } from "../log/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import { PREVIOUS_GENERATIONS } from "./_backup.ts";
import { MemoryComponent } from "./component.ts";
import { openLocalMemory } from "./local.ts";
import { STORE_NAMES, storeFile } from "./stores.ts";

const quiet = createLogger({ level: "error", sink: () => {} });
const posix = Deno.build.os !== "windows";

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-restore-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function mode(path: string): number {
  return Deno.statSync(path).mode! & 0o777;
}

Deno.test("two restores at once: one succeeds, the other gets 409, and memory keeps working", async () => {
  await withDir(async (root) => {
    const memory = await openLocalMemory({ dir: `${root}/db`, searchWorkers: 0 });
    try {
      const { id } = await memory.createConversation({ title: "before" });
      await memory.appendMessages(id, [{ role: "user", content: "kept through the restore" }]);
      await memory.backup(`${root}/backup`);
      await memory.createConversation({ title: "after the backup" });

      const results = await Promise.allSettled([memory.restore(`${root}/backup`), memory.restore(`${root}/backup`)]);
      const ok = results.filter((r) => r.status === "fulfilled");
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      assert.deepEqual(ok.length, 1);
      assert.deepEqual(refused.length, 1);
      assert.ok(refused[0].reason instanceof TabAgentError && refused[0].reason.code === "conflict", refused[0].reason);
      assert.deepEqual(memory.health.state, "ready");
      assert.deepEqual((await memory.listConversations()).items.map((c) => c.title), ["before"]);
      assert.deepEqual((await memory.searchMessages({ query: "restore" })).length, 1);
      await memory.appendMessages(id, [{ role: "user", content: "written after" }]);
      // A second restore after the first finished is allowed again.
      await memory.restore(`${root}/backup`);
    } finally {
      await memory.close();
    }
  });
});

Deno.test("restores keep the last generations of replaced files under .previous", async () => {
  await withDir(async (root) => {
    const memory = await openLocalMemory({ dir: `${root}/db`, searchWorkers: 0 });
    try {
      await memory.backup(`${root}/backup`);
      for (let i = 0; i < PREVIOUS_GENERATIONS + 2; i++) await memory.restore(`${root}/backup`);
      const generations = [...Deno.readDirSync(`${root}/db/.previous`)].filter((e) => e.isDirectory);
      assert.deepEqual(generations.length, PREVIOUS_GENERATIONS);
      for (const generation of generations) {
        for (const store of STORE_NAMES) Deno.statSync(`${root}/db/.previous/${generation.name}/${storeFile(store)}`);
      }
      assert.deepEqual([...Deno.readDirSync(`${root}/db`)].some((e) => e.name === ".restore-staging"), false);
    } finally {
      await memory.close();
    }
  });
});

Deno.test("health reports memory failed when a restore cannot put the stores back", async () => {
  await withDir(async (root) => {
    const component = new MemoryComponent({
      config: { dbPath: `${root}/db`, memoryBackend: "local", memoryGrpcAddress: "127.0.0.1:0" },
      token: null,
      log: quiet,
    });
    await component.start();
    try {
      await component.memory.backup(`${root}/backup`);
      assert.deepEqual(component.health().state, "ready");
      // A file where the generation folder must go: the swap fails after the stores were closed,
      // and so does finishing it.
      await Deno.writeTextFile(`${root}/db/.previous`, "in the way");
      const error = await component.memory.restore(`${root}/backup`).then(() => null, (e) => e);
      assert.ok(error !== null, "the restore failed");
      assert.deepEqual(component.health().state, "failed");
      const call = await component.memory.listConversations().then(() => null, (e) => e);
      assert.ok(call instanceof TabAgentError && call.code === "unavailable", call);
    } finally {
      await component.stop();
    }
  });
});

Deno.test({
  name: "memory folders are 0700 and files 0600 whatever the umask: db path, backups, staging, generations",
  ignore: !posix,
  fn: async () => {
    await withDir(async (root) => {
      Deno.mkdirSync(`${root}/db`, { mode: 0o755 });
      Deno.chmodSync(`${root}/db`, 0o755); // an existing --db-path made by hand
      Deno.mkdirSync(`${root}/backup`, { mode: 0o755 });
      Deno.chmodSync(`${root}/backup`, 0o755); // an existing, empty backup folder
      const memory = await openLocalMemory({ dir: `${root}/db`, searchWorkers: 0 });
      try {
        await memory.createConversation({ title: "secret" });
        assert.deepEqual(mode(`${root}/db`), 0o700);
        for (const store of STORE_NAMES) {
          assert.deepEqual(mode(`${root}/db/${storeFile(store)}`), 0o600, storeFile(store));
        }
        await memory.backup(`${root}/backup`);
        assert.deepEqual(mode(`${root}/backup`), 0o700);
        for (const entry of Deno.readDirSync(`${root}/backup`)) {
          assert.deepEqual(mode(`${root}/backup/${entry.name}`), 0o600, entry.name);
        }
        Deno.chmodSync(`${root}/backup/meta.db`, 0o644); // a backup copied around by hand
        await memory.restore(`${root}/backup`);
        for (const entry of Deno.readDirSync(`${root}/db`)) {
          const expected = entry.isDirectory ? 0o700 : 0o600;
          assert.deepEqual(mode(`${root}/db/${entry.name}`), expected, entry.name);
        }
        for (const generation of Deno.readDirSync(`${root}/db/.previous`)) {
          assert.deepEqual(mode(`${root}/db/.previous/${generation.name}`), 0o700);
        }
      } finally {
        await memory.close();
      }
    });
  },
});
