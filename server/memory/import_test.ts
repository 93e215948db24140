/**
 * A large import is streamed: it runs in a process whose heap is capped well below the import's
 * size held as text and parsed records, and every record lands; a bad line in the middle names the
 * line and writes nothing.
 */
import assert from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { openLocalMemory } from "./local.ts";

const CONVERSATIONS = 60;
const MESSAGES_PER_CONVERSATION = 100;
/** About 4 KiB a message: 6,000 messages make a 24 MiB import. */
const MESSAGE_TEXT = "streamed import ".repeat(256);

/** The export lines of conversation `c`, made on demand. */
function* conversationLines(c: number): Generator<string> {
  const created_at = new Date(Date.UTC(2026, 0, 1, 0, 0, c)).toISOString();
  yield JSON.stringify({
    record: "conversation",
    id: `conv-${c}`,
    title: `conversation ${c}`,
    metadata: null,
    created_at,
    updated_at: created_at,
  });
  for (let m = 0; m < MESSAGES_PER_CONVERSATION; m++) {
    yield JSON.stringify({
      record: "message",
      id: `msg_${c * MESSAGES_PER_CONVERSATION + m + 1}`,
      conversation_id: `conv-${c}`,
      role: m % 2 === 0 ? "user" : "assistant",
      content: `${c}/${m} ${MESSAGE_TEXT}`,
      model: null,
      tool_call_id: null,
      tool_calls: null,
      prompt_tokens: null,
      completion_tokens: null,
      metadata: null,
      created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, c, m)).toISOString(),
    });
  }
}

/** The import as a byte stream that makes each conversation's lines only when it is read. */
function importStream(badLine?: { at: number; text: string }): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let c = 0;
  let line = 0;
  return new ReadableStream({
    pull(controller) {
      if (c === CONVERSATIONS) return controller.close();
      const lines = [...conversationLines(c++)].map((text) => ++line === badLine?.at ? badLine.text : text);
      controller.enqueue(encoder.encode(lines.join("\n") + "\n"));
    },
  });
}

Deno.test("a 24 MiB import streams within a 32 MiB heap and every record lands", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-import-" });
  // The child imports with its old-generation heap capped. Measured: the streamed import peaks near
  // 20 MiB of heap; reading the body as text and parsing its lines first needs about 60 MiB and dies
  // here with "Reached heap limit".
  const child = `
    import { openLocalMemory } from ${JSON.stringify(new URL("./local.ts", import.meta.url).href)};
    import { importStreamForTest } from ${JSON.stringify(import.meta.url)};
    const memory = await openLocalMemory({ dir: ${JSON.stringify(dir)}, searchWorkers: 0, outbox: false });
    const result = await memory.importJsonl(importStreamForTest());
    const stats = await memory.stats();
    await memory.close();
    console.log(JSON.stringify({ result, conversations: stats.conversations, messages: stats.messages }));
  `;
  try {
    const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--v8-flags=--max-old-space-size=32", child],
      cwd: new URL("../../", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(success, true, new TextDecoder().decode(stderr));
    const report = JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
    const messages = CONVERSATIONS * MESSAGES_PER_CONVERSATION;
    assert.deepEqual(report, {
      result: { imported: { conversation: CONVERSATIONS, message: messages }, skipped: {} },
      conversations: CONVERSATIONS,
      messages,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bad line in the middle of a streamed import names the line and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-import-" });
  const memory = await openLocalMemory({ dir, searchWorkers: 0, outbox: false });
  try {
    const at = 3_000;
    const error = await memory.importJsonl(importStream({ at, text: '{"record":"message","id":' })).then(
      () => assert.fail("the import should fail"),
      (error: unknown) => error,
    );
    assert.ok(error instanceof TabAgentError);
    assert.equal(error.code, "validation_failed");
    assert.match(error.message, new RegExp(`line ${at}\\b`));
    const stats = await memory.stats();
    assert.deepEqual([stats.conversations, stats.messages], [0, 0]);
  } finally {
    await memory.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The full-size import stream, for the capped child process above. */
export function importStreamForTest(): ReadableStream<Uint8Array> {
  return importStream();
}
