/**
 * The child process of `crash_test.ts`: writes to memory as fast as it can and prints one JSON line
 * per operation, `{"try":…}` before and `{"ack":…}` after it is acknowledged, until it is killed.
 */
import { openLocalMemory } from "../local.ts";

const dir = Deno.args[0];
const memory = await openLocalMemory({ dir, searchWorkers: 0 });
const encoder = new TextEncoder();
const say = (value: unknown) => Deno.stdout.writeSync(encoder.encode(JSON.stringify(value) + "\n"));
const run = Deno.args[1];
let conversations = [(await memory.createConversation({ title: `run ${run}` })).id];
say({ ack: "create", id: conversations[0] });
let counter = 0;
for (let step = 0;; step++) {
  const roll = Math.random();
  const current = conversations[conversations.length - 1];
  if (roll < 0.08) {
    say({ try: "create" });
    const { id } = await memory.createConversation({ title: `run ${run} step ${step}` });
    conversations.push(id);
    say({ ack: "create", id });
  } else if (roll < 0.12 && conversations.length > 1) {
    const victim = conversations[0];
    say({ try: "delete", id: victim });
    await memory.deleteConversation(victim);
    conversations = conversations.slice(1);
    say({ ack: "delete", id: victim });
  } else if (roll < 0.16) {
    const { items } = await memory.listMessages(current, { limit: 2 });
    if (items.length === 2) {
      say({ try: "summary", conversation: current });
      await memory.putSummary({
        conversation_id: current,
        from_message_id: items[0].id,
        to_message_id: items[1].id,
        text: `summary ${step}`,
      });
      say({ ack: "summary", conversation: current });
    }
  } else {
    const contents = Array.from({ length: 1 + Math.floor(Math.random() * 5) }, () => `run${run} message${++counter}`);
    say({ try: "append", conversation: current, contents });
    await memory.appendMessages(current, contents.map((content) => ({ role: "user" as const, content })));
    say({ ack: "append", conversation: current, contents });
  }
  // Let the outbox worker run between writes, so kills also land in the middle of its steps.
  if (step % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
}
