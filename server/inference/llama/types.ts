/** The engine-neutral request and result shapes the llama engine takes and returns. */

/** A tool call as OpenAI writes it. */
export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** One chat message, as OpenAI's API carries it (content parts already reduced to text). */
export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string | null;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  name?: string;
}

/** A function the model may call. */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

/** "none", "auto", "required", or one named function. */
export type ToolChoice = "none" | "auto" | "required" | { name: string };

/** Sampling settings; undefined means the model's default. */
export interface SamplingOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed?: number;
  stop?: string[];
  /** Most tokens to generate; when absent, what is left of the context. */
  maxTokens?: number;
}

/** A chat generation request. */
export interface ChatRequest extends SamplingOptions {
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  /** Constrain the reply to this JSON Schema (response_format json_schema). */
  jsonSchema?: Record<string, unknown>;
  /** Constrain the reply to any JSON object (response_format json_object). */
  jsonObject?: boolean;
}

/** Why generation ended, in OpenAI's words. */
export type FinishReason = "stop" | "length" | "tool_calls";

/** What a generation produced. */
export interface GenerationResult {
  text: string;
  toolCalls: ToolCall[];
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens taken from the prompt cache instead of being processed (when known). */
  cachedTokens?: number;
  /** True when the signal stopped it (client gone, shutdown). */
  aborted: boolean;
}

/** Streaming callbacks. */
export interface GenerationCallbacks {
  /** Each new piece of reply text, as soon as it is safe to show (stop sequences withheld). */
  onText?: (text: string) => void;
  signal?: AbortSignal;
}
