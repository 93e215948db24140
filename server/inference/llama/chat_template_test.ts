/**
 * The prompt is the model's own chat template, rendered: compared with Python `jinja2` rendering the
 * template read from the real SmolLM2 GGUF (with the `gguf` package), the way Hugging Face and
 * llama-server render it.
 */
import assert from "node:assert/strict";
import { smollm2Path, VENV_PYTHON } from "../../../tests/_models.ts";
import { LlamaTextModel } from "./model.ts";
import { createLlamaRuntime } from "./runtime.ts";
import type { ChatMessage, ToolDefinition } from "./types.ts";

const RENDER = `
import json, sys
import gguf
from jinja2.sandbox import ImmutableSandboxedEnvironment
reader = gguf.GGUFReader(sys.argv[1])
field = reader.fields["tokenizer.chat_template"]
template = bytes(field.parts[field.data[0]]).decode("utf-8")
def raise_exception(message):
    raise Exception(message)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
env.globals["raise_exception"] = raise_exception
compiled = env.from_string(template)
cases = json.load(sys.stdin)
print(json.dumps([compiled.render(messages=c["messages"], tools=c.get("tools"), add_generation_prompt=True,
                                  bos_token="", eos_token="<|im_end|>") for c in cases]))
`;

/** Renders each case's messages with jinja2 and the GGUF's own template. */
async function renderWithJinja2(file: string, cases: { messages: unknown[]; tools?: unknown[] }[]): Promise<string[]> {
  const child = new Deno.Command(VENV_PYTHON, {
    args: ["-c", RENDER, file],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(cases)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return JSON.parse(new TextDecoder().decode(stdout));
}

const weather: ToolDefinition = {
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

const CASES: { name: string; messages: ChatMessage[]; tools?: ToolDefinition[] }[] = [
  { name: "no system message", messages: [{ role: "user", content: "What is 2+2?" }] },
  {
    name: "a system message",
    messages: [{ role: "system", content: "You answer in one word." }, { role: "user", content: "Capital of France?" }],
  },
  {
    name: "multi-turn",
    messages: [
      { role: "user", content: "Hi! My name is Ada." },
      { role: "assistant", content: "Hello Ada, how can I help?" },
      { role: "user", content: "What is my name?" },
      { role: "assistant", content: " Your name is Ada. " },
      { role: "user", content: "Spell it." },
    ],
  },
  {
    name: "with tools",
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Weather in Paris?" }],
    tools: [weather],
  },
];

/** Stands for the system message's content where tools add their documentation to it. */
const SYSTEM_MARK = "\u0001SYSTEM\u0001";

Deno.test({
  name: "chat template: the prompt equals jinja2's rendering of the GGUF's template (SmolLM2)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const file = await smollm2Path();
    const expected = await renderWithJinja2(
      file,
      CASES.map((c) => ({
        // SmolLM2's template ignores `tools`, so the tool documentation goes into the system message
        // (as llama-server does): the expectation keeps a mark there and checks what fills it below.
        messages: c.messages.map((m) => ({
          role: m.role,
          content: c.tools && m.role === "system" ? SYSTEM_MARK : m.content,
        })),
        tools: c.tools?.map((t) => ({ type: "function", function: t })),
      })),
    );
    const llama = await createLlamaRuntime({ threads: 1, gpu: false });
    const model = await LlamaTextModel.load(llama, file, { sequences: 1, threads: 1, contextSize: 2048 });
    try {
      assert.equal(model.chatWrapper.wrapperName, "JinjaTemplate");
      assert.equal(model.chatTemplateFallback, undefined);
      for (const [i, c] of CASES.entries()) {
        const { text, tokens } = await model.renderChat({ messages: c.messages, tools: c.tools });
        if (!c.tools) {
          assert.equal(text, expected[i], c.name);
          // The same tokens as llama.cpp's tokenizer makes of the rendered text (special tokens parsed).
          assert.deepEqual(tokens, model.model.tokenize(expected[i], true), c.name);
          continue;
        }
        const [before, after] = expected[i].split(SYSTEM_MARK);
        assert.ok(text.startsWith(before) && text.endsWith(after), `${c.name}: ${JSON.stringify(text)}`);
        const system = text.slice(before.length, text.length - after.length);
        assert.ok(system.startsWith("Be brief."), system);
        assert.match(system, /function get_weather\(params: \{city: string\}\);/);
      }
      // The default system message SmolLM2's template adds: llama-server's 37 prompt tokens.
      const { tokens } = await model.renderChat({ messages: CASES[0].messages });
      assert.equal(tokens.length, 37);
    } finally {
      await model.close();
      await llama.dispose();
    }
  },
});
