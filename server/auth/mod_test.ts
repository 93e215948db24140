import assert from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { loadOrCreateToken, tokensEqual } from "./mod.ts";

Deno.test("the token is created once, with mode 0600, and then reused", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/nested/api_token`;
  const first = await loadOrCreateToken(path);
  assert.deepEqual((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.deepEqual(await loadOrCreateToken(path), first);
  assert.deepEqual(first.length >= 32, true);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("concurrent first starts agree on one token", async () => {
  const dir = await Deno.makeTempDir();
  const tokens = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateToken(`${dir}/api_token`)));
  assert.deepEqual(new Set(tokens).size, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a malformed token file is refused, not replaced", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/api_token`, "short");
  await assert.rejects(loadOrCreateToken(`${dir}/api_token`), TabAgentError);
  assert.deepEqual(await Deno.readTextFile(`${dir}/api_token`), "short");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokens compare by content", () => {
  assert.deepEqual(tokensEqual("abc", "abc"), true);
  assert.notEqual(tokensEqual("abd", "abc"), true);
  assert.deepEqual(tokensEqual("ab", "abc"), false);
  assert.deepEqual(tokensEqual("abcd", "abc"), false, "a longer token with the right prefix");
  assert.deepEqual(tokensEqual("", "abc"), false);
  assert.deepEqual(tokensEqual("ab\0", "ab\0"), true);
  assert.deepEqual(tokensEqual("ab", "ab\0"), false, "a missing last character is not a NUL");
  assert.deepEqual(tokensEqual("caf\u00e9", "café"), true);
  assert.deepEqual(tokensEqual("cafe", "café"), false);
});
