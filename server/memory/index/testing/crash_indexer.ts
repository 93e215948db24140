/**
 * The child process of `index_crash_test.ts`: writes messages while the embedding writer embeds
 * them with the real MiniLM and the vector index follows (and saves), printing one line per
 * acknowledged append, until it is killed.
 */
import { loadTokenizer } from "../../../inference/tokenizers/mod.ts";
import { OnnxEmbeddingModel } from "../../../inference/onnx/embedding.ts";
import { openLocalMemory } from "../../local.ts";

const [dir, modelDir, run] = Deno.args;
const model = await OnnxEmbeddingModel.load(`${modelDir}/onnx/model.onnx`, await loadTokenizer(modelDir), {
  providers: ["cpu"],
  threads: 1,
  maxTokens: 256,
});
const memory = await openLocalMemory({
  dir,
  searchWorkers: 0,
  embed: async (texts) => (await model.embed(texts)).vectors,
});
const encoder = new TextEncoder();
const { id } = await memory.createConversation({ title: `run ${run}` });
for (let i = 0;; i++) {
  await memory.appendMessages(id, [{ role: "user", content: `run ${run} note ${i} about the blue lighthouse` }]);
  Deno.stdout.writeSync(encoder.encode(`${i}\n`));
  // every few writes, force the index to catch up and save, so kills land in saves too
  if (i % 5 === 4) await memory.embedPending();
}
