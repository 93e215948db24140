import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { pseudoRandomBytes } from "../../tests/hub_stub/mod.ts";
import { HASH_WORKER_MIN_BYTES } from "./limits.ts";
import { sha256OfFile } from "./verify.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

Deno.test("sha256OfFile: large files (hash thread) and small ones (inline) hash as node:crypto does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-verify-" });
  try {
    for (const size of [0, 1000, HASH_WORKER_MIN_BYTES + 300_001]) {
      const bytes = pseudoRandomBytes(size, size % 97);
      await Deno.writeFile(`${dir}/f.bin`, bytes);
      assert.equal(await sha256OfFile(`${dir}/f.bin`, size), sha256(bytes), `${size} bytes`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sha256OfFile: a file whose size is not the one given, or that is gone (changed since its stat), hashes to null", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-verify-" });
  try {
    for (const size of [1000, HASH_WORKER_MIN_BYTES + 1]) {
      await Deno.writeFile(`${dir}/f.bin`, pseudoRandomBytes(size, 3));
      // Shrunk: the read comes up short. Grown: the first `size` bytes are not the whole file.
      assert.equal(await sha256OfFile(`${dir}/f.bin`, size + 1), null, `${size}: shrunk`);
      assert.equal(await sha256OfFile(`${dir}/f.bin`, size - 1), null, `${size}: grown`);
    }
    // Removed since its stat: nothing to match either.
    assert.equal(await sha256OfFile(`${dir}/missing.bin`, 10), null);
    assert.equal(await sha256OfFile(`${dir}/missing.bin`, HASH_WORKER_MIN_BYTES), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
