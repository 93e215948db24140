/**
 * The child process of `weaver_crash_test.ts`: appends the scripted conversation (continuing where
 * the last run stopped) while the weaver weaves in the background, and drains it every few
 * messages so that kills land inside weave passes too. Prints one line per acknowledged append.
 */
import { openLocalMemory } from "../../local.ts";
import { scriptedMessage } from "./crash_script.ts";

const [dir, total] = Deno.args;
const memory = await openLocalMemory({ dir, searchWorkers: 0, weaver: { mode: "rules" } });
const { items } = await memory.listConversations({ limit: 1 });
const conversation = items[0]?.id ?? (await memory.createConversation({ title: "crash" })).id;
const encoder = new TextEncoder();
for (let i = (await memory.stats()).messages; i < Number(total); i++) {
  await memory.appendMessages(conversation, [{ role: "user", content: scriptedMessage(i) }]);
  Deno.stdout.writeSync(encoder.encode(`${i}\n`));
  if (i % 4 === 3) await memory.weavePending();
}
await memory.weavePending();
Deno.stdout.writeSync(encoder.encode("done\n"));
await memory.close();
