/** End-to-end: `tabagent backup|restore` never act on the files of a server that holds server.lock. */
import assert from "node:assert/strict";
import { runCli, startServer } from "./_server.ts";

Deno.test("tabagent backup/restore refuse while a server holds server.lock and its memory service does not answer", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-cli-lock-" });
  try {
    const first = await runCli(["backup", `${dataDir}/first`, "--data-dir", dataDir]);
    assert.deepEqual(first.code, 0, first.stderr);
    await using server = await startServer({ dataDir, args: ["--mode", "http", "--no-ml"] });
    // As on Windows or with a long socket path: the command cannot reach the server's gRPC.
    const elsewhere = ["--data-dir", dataDir, "--memory-grpc-address", `unix:${dataDir}/nobody.sock`];
    const backup = await runCli(["backup", `${dataDir}/second`, ...elsewhere]);
    assert.deepEqual(backup.code, 1, backup.stdout);
    assert.ok(backup.stderr.includes("server.lock"), backup.stderr);
    assert.deepEqual([...Deno.readDirSync(dataDir)].some((e) => e.name === "second"), false);
    const restore = await runCli(["restore", `${dataDir}/first`, ...elsewhere]);
    assert.deepEqual(restore.code, 1, restore.stdout);
    assert.ok(restore.stderr.includes("server.lock"), restore.stderr);
    // The server kept its files and still answers.
    const res = await fetch(`${server.url}/v1/memory/stats`, { headers: server.auth });
    assert.deepEqual(res.status, 200);
    await res.body?.cancel();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
