/**
 * The child process of `index_crash_test.ts`: writes messages while the embedding writer embeds
 * them with the real MiniLM and the vector index follows (and saves), printing one line per
 * acknowledged append, until it is killed.
 */
import { openLocalMemory } from "../../local.ts";
import { loadMiniLm } from "../../testing/minilm.ts";

const [dir, modelDir, run] = Deno.args;
const minilm = await loadMiniLm(modelDir);
const memory = await openLocalMemory({ dir, searchWorkers: 0, embed: minilm.embed });
const encoder = new TextEncoder();
const { id } = await memory.createConversation({ title: `run ${run}` });
for (let i = 0;; i++) {
  await memory.appendMessages(id, [{ role: "user", content: `run ${run} note ${i} about the blue lighthouse` }]);
  Deno.stdout.writeSync(encoder.encode(`${i}\n`));
  // every few writes, force the index to catch up and save, so kills land in saves too
  if (i % 5 === 4) await memory.embedPending();
}
