import assert from "node:assert/strict";
import { folderName, idFromFolder, isSafeRepoPath, parseModelId, repoPathSchema } from "./repo_id.ts";

Deno.test("model ids are org/name as the Hub spells them", () => {
  assert.deepEqual(parseModelId("Qwen/Qwen2.5-0.5B-Instruct-GGUF"), "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
  for (const bad of ["justname", "a/b/c", "../etc", "a/..", "a--b/c", "-a/b", "a/b.", "", "a/ b"]) {
    assert.throws(() => parseModelId(bad), /org\/name/, bad);
  }
});

Deno.test("cache folder names round-trip", () => {
  assert.deepEqual(folderName("org/name"), "org--name");
  assert.deepEqual(idFromFolder("org--name"), "org/name");
  assert.deepEqual(idFromFolder("not-a-model"), null);
});

Deno.test("repository paths that could leave the folder are refused", () => {
  assert.ok(isSafeRepoPath("onnx/model.onnx"));
  const bad = ["../../etc/passwd", "/etc/passwd", "a/../b", "a//b", "a\\b", "C:x", "./a", "a/", "a\u0000b"];
  // A line or paragraph separator must not hide what follows it from the check.
  bad.push("a\u2028/../../etc/passwd", "a\u2029//b", "\u2028/..", "a\u2028/");
  for (const path of bad) {
    assert.ok(!isSafeRepoPath(path), JSON.stringify(path));
    assert.ok(!repoPathSchema.safeParse(path).success, JSON.stringify(path));
  }
  assert.ok(
    repoPathSchema.safeParse("onnx/model\u2028name.onnx").success,
    "a separator inside a name is only a character",
  );
});
