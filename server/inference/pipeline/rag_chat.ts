/**
 * Retrieval-augmented chat as two pipelines, run on either side of acquiring the model (so a bad
 * conversation id fails before a model loads): check the conversation → search memory → build the
 * prompt, then generate → store both sides. Memory is optional and reached through the narrow
 * {@link ConversationMemory} interface, which the memory module's client satisfies.
 */
import { TabAgentError } from "../../errors/mod.ts";
import type { TokenCounter } from "../tokenizers/mod.ts";
import type { ChatMessage, GenerationResult } from "../llama/mod.ts";
import { Pipeline, stage, type StageContext } from "./pipeline.ts";

/** Memories retrieved into the prompt when a request asks for `memory: true`. */
export const MEMORY_RECALL_LIMIT = 5;
/** Longest memory snippet put into the prompt (characters). */
export const MEMORY_SNIPPET_CHARS = 500;
/** Tokens (by the chat model's own tokenizer) the recalled memories may take in the prompt. */
export const MEMORY_TOKEN_BUDGET = 512;

/** A message as the memory store takes it. */
export interface StoredMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  model?: string;
  tool_calls?: unknown[];
  tool_call_id?: string;
  prompt_tokens?: number;
  completion_tokens?: number;
}

/** A search hit as the memory store returns it (fields used here only). */
export interface MemoryHit {
  snippet?: string;
  content?: unknown;
  message?: { content?: unknown };
  score?: number;
}

/** A hybrid query hit as the memory store returns it (fields used here only). */
export interface QueryHit {
  id: string;
  kind: string;
  conversation_id: string | null;
  text: string;
  document?: { id: string; url: string; title: string | null };
}

/** What a reply cites: a memory that went into the prompt. */
export interface Citation {
  /** `msg_…`, `fact_…`, `chunk_…` or `tool_…`. */
  id: string;
  kind: string;
  conversation_id: string | null;
  snippet: string;
  /** For a page the user brought into a chat. */
  url?: string;
  title?: string | null;
}

/** The memory calls chat makes; the memory module's `MemoryClient` satisfies it. */
export interface ConversationMemory {
  /** Hybrid search (keywords and meaning); chat falls back to `searchMessages` without it. */
  query?(input: { query: string; k?: number }): Promise<{ hits: readonly QueryHit[] }>;
  /** Throws a `not_found` TabAgentError for an unknown id. */
  getConversation(id: string): Promise<unknown>;
  appendMessages(conversationId: string, messages: StoredMessage[]): Promise<unknown>;
  searchMessages(
    options: { query: string; limit?: number; conversationId?: string; match?: "all" | "any" },
  ): Promise<readonly MemoryHit[]>;
}

/** One chat turn going through the pipeline. */
export interface ChatTurn {
  model: string;
  messages: ChatMessage[];
  conversationId?: string;
  /** Retrieve relevant memories into the prompt. */
  useMemory?: boolean;
  /** Counts prompt tokens with the chat model's tokenizer (the memory budget is in its tokens). */
  tokenCounter?: TokenCounter;
}

/** The turn after retrieval and prompt building. */
export interface PreparedTurn extends ChatTurn {
  /** The messages sent to the model (memories prepended as a system message when retrieved). */
  prompt: ChatMessage[];
  memories: string[];
  /** The memories in the prompt, for `tabagent.citations`. */
  citations: Citation[];
}

/** The turn after generation. */
export interface CompletedTurn extends PreparedTurn {
  result: GenerationResult;
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((p) => (p && typeof p === "object" && "text" in p ? String(p.text) : "")).join(" ");
  }
  return "";
}

/** The messages of this turn that the store has not seen: everything after the last assistant reply. */
export function newTurnMessages(messages: ChatMessage[]): StoredMessage[] {
  let start = 0;
  messages.forEach((m, i) => {
    if (m.role === "assistant") start = i + 1;
  });
  return messages.slice(start).filter((m) => m.role !== "system" && m.role !== "developer").map((m) => ({
    role: m.role as StoredMessage["role"],
    content: m.content ?? "",
    ...(m.tool_call_id ? { tool_call_id: m.tool_call_id } : {}),
  }));
}

/** The stages before generation: conversation check, retrieval, prompt. */
export function prepareTurnPipeline(memory: ConversationMemory | undefined): Pipeline<ChatTurn, PreparedTurn> {
  return Pipeline.start(stage("conversation", async (turn: ChatTurn) => {
    if ((turn.conversationId || turn.useMemory) && !memory) {
      throw new TabAgentError("unavailable", "Memory is not running, so conversation_id and memory cannot be used");
    }
    if (turn.conversationId) await memory!.getConversation(turn.conversationId);
    return turn;
  })).then(stage("retrieve", async (turn: ChatTurn) => {
    const query = [...turn.messages].reverse().find((m) => m.role === "user")?.content ?? "";
    if (!turn.useMemory || !query) return { ...turn, memories: [] as string[], citations: [] as Citation[] };
    const candidates = await recall(memory!, query);
    // fill the budget in rank order, measured with the chat model's tokenizer
    const count = (text: string) => turn.tokenCounter?.countTokens(text) ?? Math.ceil(text.length / 4);
    const citations: Citation[] = [];
    const memories: string[] = [];
    let used = 0;
    for (const candidate of candidates) {
      if (citations.length >= MEMORY_RECALL_LIMIT) break;
      // the line exactly as the prompt will hold it
      const line = memoryLine(candidate);
      const cost = count(`- ${line}\n`);
      if (used + cost > MEMORY_TOKEN_BUDGET) continue;
      used += cost;
      citations.push(candidate);
      memories.push(line);
    }
    return { ...turn, memories, citations };
  })).then(stage("prompt", (turn: ChatTurn & { memories: string[]; citations: Citation[] }): PreparedTurn => {
    if (!turn.memories.length) return { ...turn, prompt: turn.messages };
    const note: ChatMessage = {
      role: "system",
      content: `Relevant memories from earlier conversations:\n${turn.memories.map((m) => `- ${m}`).join("\n")}`,
    };
    const firstNonSystem = turn.messages.findIndex((m) => m.role !== "system" && m.role !== "developer");
    const at = firstNonSystem === -1 ? turn.messages.length : firstNonSystem;
    return { ...turn, prompt: [...turn.messages.slice(0, at), note, ...turn.messages.slice(at)] };
  }));
}

/**
 * A memory as one line of the prompt: a page the user kept says which page it was (so the model
 * can name it), a tool result that it came from a tool.
 */
export function memoryLine(citation: Citation): string {
  if (citation.url) {
    const title = citation.title ? `"${citation.title}" ` : "";
    return `From the page ${title}(${citation.url}): ${citation.snippet}`;
  }
  if (citation.kind === "tool_result") return `From a tool call: ${citation.snippet}`;
  return citation.snippet;
}

/** Memories for `query`, best first: hybrid search when the memory has it, else keywords. */
async function recall(memory: ConversationMemory, query: string): Promise<Citation[]> {
  const clip = (text: string) => text.slice(0, MEMORY_SNIPPET_CHARS);
  if (memory.query) {
    const { hits } = await memory.query({ query: query.slice(0, 1_000), k: MEMORY_RECALL_LIMIT * 2 });
    return hits.filter((h) => h.text && h.text !== query).map((h) => ({
      id: h.id,
      kind: h.kind,
      conversation_id: h.conversation_id,
      snippet: clip(h.text),
      ...(h.document ? { url: h.document.url, title: h.document.title } : {}),
    }));
  }
  // A question shares some words with what answers it, rarely all of them: rank by any word.
  const hits = await memory.searchMessages({ query, limit: MEMORY_RECALL_LIMIT * 2, match: "any" });
  return hits.map((h) => ({
    id: String((h.message as { id?: string } | undefined)?.id ?? ""),
    kind: "message",
    conversation_id: (h as { conversation_id?: string }).conversation_id ?? null,
    snippet: clip(h.snippet || textOf(h.content) || textOf(h.message?.content)),
  })).filter((c) => c.snippet && c.snippet !== query);
}

/** The stages from generation on: the model call, then storing both sides. */
export function completeTurnPipeline(
  memory: ConversationMemory | undefined,
  generate: (turn: PreparedTurn, context: StageContext) => Promise<GenerationResult>,
): Pipeline<PreparedTurn, CompletedTurn> {
  return Pipeline.start(stage("generate", async (turn: PreparedTurn, context) => ({
    ...turn,
    result: await generate(turn, context),
  }))).then(stage("store", async (turn: CompletedTurn) => {
    if (!turn.conversationId || !memory || turn.result.aborted) return turn;
    const { result } = turn;
    await memory.appendMessages(turn.conversationId, [
      ...newTurnMessages(turn.messages),
      {
        role: "assistant",
        content: result.text,
        model: turn.model,
        ...(result.toolCalls.length ? { tool_calls: result.toolCalls } : {}),
        prompt_tokens: result.promptTokens,
        completion_tokens: result.completionTokens,
      },
    ]);
    return turn;
  }));
}
