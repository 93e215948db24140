import assert from "node:assert/strict";
import { generateMlTypes } from "../../scripts/gen_ml_types.ts";
import { loadMlProto } from "./_proto.ts";

const GENERATED = decodeURIComponent(new URL("./_generated", import.meta.url).pathname);

async function files(dir: string, prefix = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) { for (const [k, v] of await files(path, `${prefix}${entry.name}/`)) out.set(k, v); }
    else out.set(`${prefix}${entry.name}`, await Deno.readTextFile(path));
  }
  return out;
}

Deno.test("the committed TypeScript types match protos/ml_inference.proto", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-ml-types-" });
  try {
    await generateMlTypes(dir);
    const fresh = await files(dir);
    const committed = await files(GENERATED);
    assert.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort());
    for (const [name, text] of fresh) {
      assert.deepEqual(committed.get(name), text, `${name} is stale: run 'deno run -A scripts/gen_ml_types.ts'`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the proto loads with every service the server calls", () => {
  const proto = loadMlProto();
  assert.deepEqual(Object.keys(proto.ml.ModelManagement.service).sort(), [
    "ListModels",
    "LoadModel",
    "Ping",
    "Status",
    "UnloadModel",
  ]);
  assert.deepEqual(Object.keys(proto.ml.Transformers.service).sort(), ["Classify", "Embed", "Generate"]);
  assert.deepEqual(Object.keys(proto.ml.MediaPipe.service).sort(), ["Detect", "DetectStream"]);
  assert.deepEqual(Object.keys(proto.ml.LiteRT.service), ["Run"]);
  assert.deepEqual(Object.keys(proto.health.Health.service).sort(), ["Check", "Watch"]);
});
