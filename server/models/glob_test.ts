import { deepEqual as assertEquals, equal, throws } from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { compileGlob, matchesAny, MAX_GLOB_PATTERN_LENGTH } from "./glob.ts";

Deno.test("globs match within and across folders", () => {
  equal(compileGlob("*Q8_0.gguf").test("mmproj-SmolVLM-256M-Instruct-Q8_0.gguf"), true);
  equal(compileGlob("*.onnx").test("onnx/model.onnx"), false);
  equal(compileGlob("**/*.onnx").test("onnx/model.onnx"), true);
  equal(compileGlob("**/*.onnx").test("model.onnx"), true);
  equal(compileGlob("**/*.onnx").test("a/b/c/model.onnx"), true);
  equal(compileGlob("a/**/b").test("a/xb"), false);
  equal(compileGlob("a/**/b").test("a/b"), true);
  equal(compileGlob("a/**/b").test("a/x/y/b"), true);
  equal(compileGlob("openvino/**").test("openvino/x/y.bin"), true);
  equal(compileGlob("openvino/**").test("openvino2/x"), false);
  equal(compileGlob("a?c").test("abc"), true);
  equal(compileGlob("a?c").test("a/c"), false);
  equal(compileGlob("a.c").test("abc"), false); // regex characters are literal
  equal(compileGlob("*").test(""), true);
  equal(compileGlob("x*").test("x"), true);
  equal(compileGlob("config.json").test("config.json"), true);
  equal(compileGlob("config.json").test("config.jsonx"), false);
});

Deno.test("matchesAny takes exact paths and globs", () => {
  equal(matchesAny("tokenizer.json", ["config.json", "tokenizer.json"]), true);
  equal(matchesAny("x.h5", [".gitattributes", "*.h5"]), true);
  equal(matchesAny("x.safetensors", ["*.h5", "**/*.h5"]), false);
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
    equal(compileGlob(pattern).test(path), false, pattern);
    equal(compileGlob(pattern).test(path.repeat(16) + "/" + path), false, pattern);
  }
  // Work is bounded by path length × pattern states: count it rather than time it.
  equal(compileGlob("*a".repeat(120) + "a").test("a".repeat(500)), true);
});

Deno.test("patterns longer than the limit are refused with bad_request", () => {
  throws(() => compileGlob("*".repeat(MAX_GLOB_PATTERN_LENGTH + 1)), (error: unknown) => {
    assertEquals((error as TabAgentError).code, "bad_request");
    return true;
  });
  equal(compileGlob("*".repeat(MAX_GLOB_PATTERN_LENGTH)).test("x"), true);
});
