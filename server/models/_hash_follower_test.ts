import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { pseudoRandomBytes } from "../../tests/hub_stub/mod.ts";
import { followHash, hashThreadStats, warmHashThread } from "./_hash_follower.ts";
import { HASH_WORKER_MIN_BYTES } from "./limits.ts";

const BYTES = pseudoRandomBytes(HASH_WORKER_MIN_BYTES + 5 * 1024 * 1024 + 3, 21);
const SHA256 = createHash("sha256").update(BYTES).digest("hex");

async function withFile(run: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-hash-" });
  try {
    await Deno.writeFile(`${dir}/file.bin`, BYTES);
    await run(`${dir}/file.bin`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a large file is hashed on a warm thread as its prefix grows, and the next file reuses the thread", async () => {
  await withFile(async (path) => {
    warmHashThread();
    const before = hashThreadStats();
    assert.ok(before.idle >= 1, "warming leaves a thread waiting");
    for (let round = 0; round < 2; round++) {
      const follower = followHash(path, BYTES.length);
      for (let to = 0; to < BYTES.length; to += 3 * 1024 * 1024 + 7) follower.advance(to);
      assert.deepEqual(await follower.finish(), { sha256: SHA256 });
    }
    assert.deepEqual(hashThreadStats().started, before.started, "no new thread was started");
  });
});

Deno.test("a hash that fails (the file is shorter than said) rejects, and its thread serves the next file", async () => {
  await withFile(async (path) => {
    const short = followHash(path, BYTES.length + 1);
    await assert.rejects(() => short.finish(), /short read/);
    const cancelled = followHash(path, BYTES.length);
    cancelled.advance(BYTES.length - 1);
    cancelled.close();
    const started = hashThreadStats().started;
    const good = followHash(path, BYTES.length, true);
    const blob = createHash("sha1").update(`blob ${BYTES.length}\0`).update(BYTES).digest("hex");
    assert.deepEqual(await good.finish(), { sha256: SHA256, gitSha1: blob });
    assert.deepEqual(hashThreadStats().started, started);
  });
});

Deno.test("an idle hash thread does not keep a process alive", async () => {
  await withFile(async (path) => {
    const script = `
      import { followHash } from ${JSON.stringify(new URL("./_hash_follower.ts", import.meta.url).href)};
      const follower = followHash(${JSON.stringify(path)}, ${BYTES.length});
      console.log((await follower.finish()).sha256);
    `;
    // The guard only turns a hang into a failure; a healthy run exits as soon as it has printed.
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", new URL("../../deno.json", import.meta.url).pathname, script],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    assert.deepEqual(new TextDecoder().decode(output.stderr), "");
    assert.ok(output.success, `exit code ${output.code}`);
    assert.deepEqual(new TextDecoder().decode(output.stdout).trim(), SHA256);
  });
});
