import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { TabAgentError } from "../errors/mod.ts";
import { applicationId, closeStores, latestVersion, openStores, STORE_NAMES, storeFile } from "./stores.ts";

function refusal(fn: () => unknown): TabAgentError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TabAgentError) return error;
    throw error;
  }
  throw new Error("expected the stores to be refused");
}

Deno.test("stores: a fresh folder gets seven migrated WAL stores, and reopening changes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-stores-" });
  try {
    const stores = openStores(`${dir}/db`);
    for (const name of STORE_NAMES) {
      const db = stores[name];
      assert.deepEqual((db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode, "wal");
      assert.deepEqual((db.prepare("PRAGMA foreign_keys").get() as { foreign_keys: number }).foreign_keys, 1);
      assert.deepEqual(
        (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
        latestVersion(name),
      );
      assert.deepEqual(
        (db.prepare("PRAGMA application_id").get() as { application_id: number }).application_id,
        applicationId(name),
      );
    }
    const versions = stores.meta.prepare("SELECT store, version FROM schema_versions ORDER BY store").all();
    assert.deepEqual(versions.length, 7);
    closeStores(stores);
    closeStores(openStores(`${dir}/db`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stores: an empty file left by a crash during the first open is taken as new", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-stores-" });
  try {
    await Deno.writeFile(`${dir}/${storeFile("knowledge")}`, new Uint8Array());
    closeStores(openStores(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stores: damaged, foreign and newer files are refused by name and left untouched", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-stores-" });
  try {
    closeStores(openStores(dir));
    const path = `${dir}/${storeFile("tool_results")}`;
    const pristine = await Deno.readFile(path);

    const bytes = pristine.slice();
    bytes.fill(0x5a, 100, 4096); // wreck the first page's b-tree header and cells
    await Deno.writeFile(path, bytes);
    let error = refusal(() => openStores(dir));
    assert.deepEqual(error.code, "storage_corrupt");
    assert.ok(error.message.includes(path), error.message);
    assert.deepEqual(await Deno.readFile(path), bytes);

    await Deno.writeFile(path, pristine);
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA user_version = ${latestVersion("tool_results") + 1}`);
    db.close();
    error = refusal(() => openStores(dir));
    assert.ok(error.message.includes("newer than this TabAgent"), error.message);

    await Deno.remove(path);
    const foreign = new DatabaseSync(path);
    foreign.exec("CREATE TABLE notes(text)");
    foreign.close();
    error = refusal(() => openStores(dir));
    assert.ok(error.message.includes("not a TabAgent 'tool_results' store"), error.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
