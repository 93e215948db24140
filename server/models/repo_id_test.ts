import { deepEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { folderName, idFromFolder, isSafeRepoPath, parseModelId } from "./repo_id.ts";

Deno.test("model ids are org/name as the Hub spells them", () => {
  assertEquals(parseModelId("Qwen/Qwen2.5-0.5B-Instruct-GGUF"), "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
  for (const bad of ["justname", "a/b/c", "../etc", "a/..", "a--b/c", "-a/b", "a/b.", "", "a/ b"]) {
    throws(() => parseModelId(bad), /org\/name/, bad);
  }
});

Deno.test("cache folder names round-trip", () => {
  assertEquals(folderName("org/name"), "org--name");
  assertEquals(idFromFolder("org--name"), "org/name");
  assertEquals(idFromFolder("not-a-model"), null);
});

Deno.test("repository paths that could leave the folder are refused", () => {
  assert(isSafeRepoPath("onnx/model.onnx"));
  for (const bad of ["../../etc/passwd", "/etc/passwd", "a/../b", "a//b", "a\\b", "C:x", "./a", "a/", "a\u0000b"]) {
    assert(!isSafeRepoPath(bad), bad);
  }
});
