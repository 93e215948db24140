import assert from "node:assert/strict";
import { TabAgentError } from "../../errors/mod.ts";
import type { GenerationResult } from "../llama/mod.ts";
import { Pipeline, stage } from "./pipeline.ts";
import {
  type ChatTurn,
  completeTurnPipeline,
  type ConversationMemory,
  type MemoryHit,
  type PreparedTurn,
  prepareTurnPipeline,
  type StoredMessage,
} from "./rag_chat.ts";

/** A small in-memory stand-in for the memory module, shaped like its client. */
class InMemoryConversations implements ConversationMemory {
  conversations = new Map<string, StoredMessage[]>();
  getConversation(id: string): Promise<unknown> {
    if (!this.conversations.has(id)) {
      return Promise.reject(new TabAgentError("not_found", `No conversation with id '${id}'`));
    }
    return Promise.resolve({ id });
  }
  appendMessages(id: string, messages: StoredMessage[]): Promise<unknown> {
    this.conversations.get(id)!.push(...messages);
    return Promise.resolve(messages);
  }
  searchMessages(options: { query: string; limit?: number }): Promise<MemoryHit[]> {
    const words = options.query.toLowerCase().split(/\W+/).filter(Boolean);
    const hits = [...this.conversations.values()].flat()
      .filter((m) => words.some((w) => m.content.toLowerCase().includes(w)))
      .map((m) => ({ snippet: m.content, score: 1 }));
    return Promise.resolve(hits.slice(0, options.limit));
  }
}

/** Chat as production runs it: prepare the turn, (acquire the model,) then generate and store. */
function ragChat(memory: ConversationMemory | undefined, generate: (turn: PreparedTurn) => Promise<GenerationResult>) {
  const prepare = prepareTurnPipeline(memory);
  const complete = completeTurnPipeline(memory, generate);
  return {
    stages: [...prepare.stages, ...complete.stages],
    run: async (turn: ChatTurn) => await complete.run(await prepare.run(turn)),
  };
}

const reply = (text: string): GenerationResult => ({
  text,
  toolCalls: [],
  finishReason: "stop",
  promptTokens: 10,
  completionTokens: 3,
  aborted: false,
});

Deno.test("a pipeline chains typed stages and names the stage that failed", async () => {
  const p = Pipeline.start(stage("trim", (s: string) => s.trim())).then(stage("length", (s: string) => s.length));
  assert.equal(await p.run("  hi "), 2);
  assert.deepEqual(p.stages, ["trim", "length"]);
  const failing = p.then(stage("check", (n: number) => {
    if (n < 5) throw new TabAgentError("bad_request", "too short");
    return n;
  }));
  await assert.rejects(
    failing.run("hi"),
    (e: unknown) => e instanceof TabAgentError && e.code === "bad_request" && e.extensions.stage === "check",
  );
  await assert.rejects(
    Pipeline.start(stage("boom", () => JSON.parse("{"))).run(undefined),
    (e: unknown) => e instanceof TabAgentError && e.code === "internal" && e.extensions.stage === "boom",
  );
});

Deno.test("retrieval-augmented chat: memories reach the prompt, both sides are stored", async () => {
  const memory = new InMemoryConversations();
  memory.conversations.set("old", [{ role: "user", content: "My train to Lyon leaves at 9" }]);
  memory.conversations.set("c1", []);
  let promptSeen = "";
  const pipeline = ragChat(memory, (turn) => {
    promptSeen = turn.prompt.map((m) => m.content).join("\n");
    return Promise.resolve(reply("At 9."));
  });
  assert.deepEqual(pipeline.stages, ["conversation", "retrieve", "prompt", "generate", "store"]);
  const done = await pipeline.run({
    model: "org/m",
    conversationId: "c1",
    useMemory: true,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "When is my train?" }],
  });
  assert.ok(promptSeen.includes("My train to Lyon leaves at 9"));
  assert.equal(done.prompt[1].role, "system");
  assert.deepEqual(memory.conversations.get("c1"), [
    { role: "user", content: "When is my train?" },
    { role: "assistant", content: "At 9.", model: "org/m", prompt_tokens: 10, completion_tokens: 3 },
  ]);
});

Deno.test("an unknown conversation fails before generating; no memory means conversation_id is unavailable", async () => {
  let generated = false;
  const generate = () => {
    generated = true;
    return Promise.resolve(reply("x"));
  };
  await assert.rejects(
    ragChat(new InMemoryConversations(), generate).run({
      model: "m",
      conversationId: "nope",
      messages: [{ role: "user", content: "hi" }],
    }),
    (e: unknown) => e instanceof TabAgentError && e.code === "not_found" && e.extensions.stage === "conversation",
  );
  await assert.rejects(
    ragChat(undefined, generate).run({ model: "m", conversationId: "c", messages: [] }),
    (e: unknown) => e instanceof TabAgentError && e.code === "unavailable",
  );
  assert.equal(generated, false);
  const plain = await ragChat(undefined, generate).run({
    model: "m",
    messages: [{ role: "user", content: "hi" }],
  });
  assert.equal(plain.result.text, "x");
});
