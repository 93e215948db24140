import assert from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { compileGlob, matchesAny, MAX_GLOB_PATTERN_LENGTH } from "./glob.ts";

Deno.test("globs match within and across folders", () => {
  assert.equal(compileGlob("*Q8_0.gguf").test("mmproj-SmolVLM-256M-Instruct-Q8_0.gguf"), true);
  assert.equal(compileGlob("*.onnx").test("onnx/model.onnx"), false);
  assert.equal(compileGlob("**/*.onnx").test("onnx/model.onnx"), true);
  assert.equal(compileGlob("**/*.onnx").test("model.onnx"), true);
  assert.equal(compileGlob("**/*.onnx").test("a/b/c/model.onnx"), true);
  assert.equal(compileGlob("a/**/b").test("a/xb"), false);
  assert.equal(compileGlob("a/**/b").test("a/b"), true);
  assert.equal(compileGlob("a/**/b").test("a/x/y/b"), true);
  assert.equal(compileGlob("openvino/**").test("openvino/x/y.bin"), true);
  assert.equal(compileGlob("openvino/**").test("openvino2/x"), false);
  assert.equal(compileGlob("a?c").test("abc"), true);
  assert.equal(compileGlob("a?c").test("a/c"), false);
  assert.equal(compileGlob("a.c").test("abc"), false); // regex characters are literal
  assert.equal(compileGlob("*").test(""), true);
  assert.equal(compileGlob("x*").test("x"), true);
  assert.equal(compileGlob("config.json").test("config.json"), true);
  assert.equal(compileGlob("config.json").test("config.jsonx"), false);
});

Deno.test("matchesAny takes exact paths and globs", () => {
  assert.equal(matchesAny("tokenizer.json", ["config.json", "tokenizer.json"]), true);
  assert.equal(matchesAny("x.h5", [".gitattributes", "*.h5"]), true);
  assert.equal(matchesAny("x.safetensors", ["*.h5", "**/*.h5"]), false);
});

Deno.test("adversarial patterns finish at once (the old regex ran over a minute)", () => {
  const path = "a".repeat(60);
  const cases = [
    "*".repeat(40) + "z",
    "*a".repeat(120) + "z",
    "**/".repeat(80) + "z",
    "*?".repeat(120) + "z",
    "**a".repeat(80) + "z",
  ];
  for (const pattern of cases) {
    assert.equal(compileGlob(pattern).test(path), false, pattern);
    assert.equal(compileGlob(pattern).test(path.repeat(16) + "/" + path), false, pattern);
  }
  // Work is bounded by path length × pattern states: count it rather than time it.
  assert.equal(compileGlob("*a".repeat(120) + "a").test("a".repeat(500)), true);
});

Deno.test("patterns longer than the limit are refused with bad_request", () => {
  assert.throws(() => compileGlob("*".repeat(MAX_GLOB_PATTERN_LENGTH + 1)), (error: unknown) => {
    assert.deepEqual((error as TabAgentError).code, "bad_request");
    return true;
  });
  assert.equal(compileGlob("*".repeat(MAX_GLOB_PATTERN_LENGTH)).test("x"), true);
});
