import assert from "node:assert/strict";
import { detectHardware, type HardwareInfo } from "../../hardware/mod.ts";
import { loadTokenizer } from "../tokenizers/mod.ts";
import { OnnxEmbeddingModel } from "./embedding.ts";
import { chooseProviders, EXECUTION_PROVIDERS, providerStatuses } from "./providers.ts";
import { compiledBackends, createSession, installedProviderLibraries } from "./session.ts";

const FIXTURES = decodeURIComponent(new URL("../../../tests/.fixtures", import.meta.url).pathname);

Deno.test("every provider in the catalog gets a status, and this build's CPU provider is usable here", async () => {
  const hardware = await detectHardware();
  const statuses = providerStatuses(compiledBackends(), hardware, await installedProviderLibraries());
  assert.deepEqual(statuses.map((s) => s.id).sort(), EXECUTION_PROVIDERS.map((p) => p.id).sort());
  for (const status of statuses) assert.ok(status.usable || status.reason, `${status.id} is unusable without a reason`);
  const cpu = statuses.find((s) => s.id === "cpu")!;
  assert.equal(cpu.usable, true);
  const coreml = statuses.find((s) => s.id === "coreml")!;
  assert.equal(coreml.usable, false);
  assert.ok(coreml.reason);
  assert.equal(chooseProviders(statuses).at(-1), "cpu");
});

Deno.test("CUDA is chosen first on an NVIDIA machine whose CUDA libraries are installed, with CPU fallback", () => {
  const hardware = {
    os: "linux",
    arch: "x86_64",
    cpu: { model: "", vendor: "AuthenticAMD", physicalCores: 8, logicalCores: 16, features: [] },
    memory: { totalBytes: 1, availableBytes: 1 },
    gpus: [{ vendor: "nvidia", name: "L4", vramBytes: 1, source: "nvidia-smi" }],
    npus: [],
    acceleration: { cuda: true, rocm: false, vulkan: false, metal: false, directml: false },
    recommended: { threads: 8, memoryBudgetBytes: 1, llamaGpu: "cuda" },
    notes: [],
  } satisfies HardwareInfo;
  const compiled = [{ name: "cpu", bundled: true }, { name: "cuda", bundled: false }, {
    name: "tensorrt",
    bundled: false,
  }];
  const without = providerStatuses(compiled, hardware);
  assert.equal(without.find((s) => s.id === "cuda")!.reason, "its provider libraries are not installed");
  assert.deepEqual(chooseProviders(without), ["cpu"]);
  const withCuda = providerStatuses(compiled, hardware, new Set(["cuda"]));
  assert.deepEqual(chooseProviders(withCuda), ["cuda", "cpu"]);
});

Deno.test("a provider that refuses the model falls back to CPU", async () => {
  const { provider, io } = await createSession(`${FIXTURES}/tiny-embed.onnx`, { providers: ["cuda"], threads: 1 });
  assert.equal(provider, "cpu");
  assert.deepEqual(io.inputs.map((i) => i.name), ["input_ids", "attention_mask"]);
  assert.deepEqual(io.outputs[0], { name: "last_hidden_state", type: "float32", shape: ["batch", "sequence", 32] });
});

Deno.test("embeddings: unit vectors, identical texts identical, padding does not change a vector", async () => {
  const tokenizer = await loadTokenizer(FIXTURES);
  const model = await OnnxEmbeddingModel.load(`${FIXTURES}/tiny-embed.onnx`, tokenizer, {
    providers: ["cpu"],
    threads: 1,
  });
  try {
    const alone = await model.embed(["the cat"]);
    const batch = await model.embed(["the cat", "a much longer sentence about the weather"]);
    assert.equal(batch.vectors.length, 2);
    const norm = Math.hypot(...batch.vectors[0]);
    assert.ok(Math.abs(norm - 1) < 1e-5);
    for (let i = 0; i < alone.vectors[0].length; i++) {
      assert.ok(Math.abs(alone.vectors[0][i] - batch.vectors[0][i]) < 1e-5);
    }
    assert.equal(alone.promptTokens, tokenizer.countTokens("the cat"));
  } finally {
    await model.close();
  }
});
