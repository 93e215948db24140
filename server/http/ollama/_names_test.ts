import assert from "node:assert/strict";
import { listedName, modelNotFound, quantOfFile, resolveModelName, splitTag } from "./_names.ts";

const KNOWN = [
  "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
  "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
  "ngxson/SmolLM2-360M-Instruct-Q8_0-GGUF",
];

Deno.test("quantisations are read from GGUF file names", () => {
  assert.equal(quantOfFile("/m/SmolLM2-135M-Instruct.Q4_1.gguf"), "Q4_1");
  assert.equal(quantOfFile("qwen2.5-0.5b-instruct-q4_k_m.gguf"), "Q4_K_M");
  assert.equal(quantOfFile("model-f16.gguf"), "F16");
  assert.equal(quantOfFile("model.gguf"), undefined);
  assert.equal(quantOfFile("onnx/model.onnx"), undefined);
  assert.equal(listedName("org/m", "/x/m.Q8_0.gguf"), "org/m:Q8_0");
  assert.equal(listedName("org/m", "/x/onnx/model.onnx"), "org/m:latest");
});

Deno.test("tags split after the last slash only", () => {
  assert.deepEqual(splitTag("org/name:Q4_1"), { base: "org/name", tag: "Q4_1" });
  assert.deepEqual(splitTag("llama3.2"), { base: "llama3.2", tag: "latest" });
  assert.deepEqual(splitTag("localhost:5000/org/name"), { base: "localhost:5000/org/name", tag: "latest" });
});

Deno.test("Hub ids resolve to themselves, with the quantisation their tag names", () => {
  assert.deepEqual(resolveModelName("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q4_1", KNOWN), {
    id: "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
    quant: "Q4_1",
    tag: "Q4_1",
  });
  assert.deepEqual(resolveModelName("hf.co/qwen/qwen2.5-0.5b-instruct-gguf:q4_k_m", KNOWN), {
    id: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
    quant: "Q4_K_M",
    tag: "q4_k_m",
  });
  assert.deepEqual(resolveModelName("org/unknown:latest", KNOWN), {
    id: "org/unknown",
    quant: undefined,
    tag: "latest",
  });
});

Deno.test("short Ollama names match a repository by its leading words and the tag's words", () => {
  assert.equal(resolveModelName("smollm2:135m", KNOWN)?.id, "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF");
  assert.equal(resolveModelName("smollm2:360m", KNOWN)?.id, "ngxson/SmolLM2-360M-Instruct-Q8_0-GGUF");
  assert.equal(resolveModelName("smollm2", KNOWN)?.id, "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF");
  assert.equal(resolveModelName("qwen2.5:0.5b-instruct-q4_K_M", KNOWN)?.quant, "Q4_K_M");
  assert.equal(resolveModelName("llama3.2", KNOWN), undefined);
  assert.equal(resolveModelName("smollm2:1.7b", KNOWN), undefined);
  assert.equal(resolveModelName("../etc:passwd", KNOWN), undefined);
});

Deno.test("model not found reads like Ollama's and names the pull command", () => {
  const error = modelNotFound("llama3.2");
  assert.equal(error.code, "not_found");
  assert.match(error.message, /^model "llama3\.2" not found, try pulling it first/);
  assert.match(modelNotFound("x", "org/x").message, /tabagent models pull org\/x/);
});
