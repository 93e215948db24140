/** OpenAI chat messages → node-llama-cpp chat history. */
import type { ChatHistoryItem, ChatModelFunctionCall } from "node-llama-cpp";
import { TabAgentError } from "../../errors/mod.ts";
import type { ChatMessage } from "./types.ts";

function parseArguments(text: string, name: string): unknown {
  try {
    return JSON.parse(text || "{}");
  } catch (error) {
    throw new TabAgentError("validation_failed", `The arguments of the call to '${name}' are not valid JSON`, {
      errors: [{ field: "messages.tool_calls.function.arguments", message: "not valid JSON" }],
    }, { cause: error });
  }
}

/**
 * Converts messages to history and appends an empty model turn to generate into. Tool results are
 * attached to the assistant's calls by `tool_call_id`, which is how the chat wrappers render them.
 */
export function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const results = new Map<string, string>();
  for (const message of messages) {
    if (message.role === "tool" && message.tool_call_id) results.set(message.tool_call_id, message.content ?? "");
  }
  for (const message of messages) {
    const text = message.content ?? "";
    switch (message.role) {
      case "system":
      case "developer":
        history.push({ type: "system", text });
        break;
      case "user":
        history.push({ type: "user", text });
        break;
      case "assistant": {
        const response: (string | ChatModelFunctionCall)[] = [];
        if (text) response.push(text);
        for (const call of message.tool_calls ?? []) {
          response.push({
            type: "functionCall",
            name: call.function.name,
            params: parseArguments(call.function.arguments, call.function.name),
            result: results.get(call.id) ?? "",
          });
        }
        history.push({ type: "model", response });
        break;
      }
      case "tool":
        // Rendered with the call it answers; a result without a call becomes user-visible context.
        if (!message.tool_call_id || !messages.some((m) => m.tool_calls?.some((c) => c.id === message.tool_call_id))) {
          history.push({ type: "user", text: `Tool result${message.name ? ` (${message.name})` : ""}: ${text}` });
        }
        break;
    }
  }
  history.push({ type: "model", response: [] });
  return history;
}
