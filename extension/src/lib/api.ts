/**
 * The TabAgent API as the panel uses it: models, streaming chat (OpenAI SSE with TabAgent's
 * `conversation_id` and `memory`), memory conversations and model pulls. Requests go through a
 * {@link Transport}: direct `fetch` to the server, or the native-messaging relay.
 */
import { z } from "zod";
import { readSse } from "./sse.ts";

/** Sends one HTTP request to the server (path starts with `/`). */
export type Transport = (path: string, init: RequestInit) => Promise<Response>;

/** A transport that fetches `baseUrl` with the bearer token. */
export function fetchTransport(baseUrl: string, token: string | null): Transport {
  const base = baseUrl.replace(/\/+$/, "");
  return (path, init) => {
    const headers = new Headers(init.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    return fetch(`${base}${path}`, { ...init, headers });
  };
}

/** An error the server answered with (problem+json), or a network failure (`status` 0). */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = "ApiError";
  }
}

const ProblemSchema = z.object({ code: z.string().optional(), detail: z.string().optional(), title: z.string() });

async function problemOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const problem = ProblemSchema.parse(JSON.parse(text));
    return new ApiError(response.status, problem.code ?? "error", problem.detail ?? problem.title);
  } catch {
    return new ApiError(response.status, "error", text.slice(0, 300) || response.statusText);
  }
}

/** A model as `/v1/models` lists it. */
export const ModelSchema = z.object({
  id: z.string(),
  downloaded: z.boolean().optional(),
  loaded: z.boolean().optional(),
  task: z.string().nullable().optional(),
  name: z.string().optional(),
  size: z.number().optional(),
  pulling: z.boolean().optional(),
  in_catalog: z.boolean().optional(),
});
/** A model entry. */
export type Model = z.infer<typeof ModelSchema>;

/** A stored conversation. */
export const ConversationSchema = z.object({
  id: z.string(),
  title: z.string().nullable(),
  message_count: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
});
/** A conversation entry. */
export type Conversation = z.infer<typeof ConversationSchema>;

/** A stored message. */
export const StoredMessageSchema = z.object({
  id: z.string(),
  role: z.string(),
  content: z.union([z.string(), z.array(z.record(z.string(), z.unknown()))]),
  model: z.string().nullable().optional(),
  created_at: z.string(),
});
/** A stored message entry. */
export type StoredMessage = z.infer<typeof StoredMessageSchema>;

const SearchHitSchema = z.object({ conversation_id: z.string(), snippet: z.string(), message: StoredMessageSchema });
/** A search hit. */
export type SearchHit = z.infer<typeof SearchHitSchema>;

/** A page kept in memory (`POST /v1/memory/documents`). */
export const KeptDocumentSchema = z.object({
  id: z.string(),
  conversation_id: z.string().nullable(),
  url: z.string(),
  title: z.string().nullable(),
  chunks: z.number(),
  created_at: z.string(),
});
/** A kept page. */
export type KeptDocument = z.infer<typeof KeptDocumentSchema>;
/** Longest page text the server keeps (characters). */
export const MAX_DOCUMENT_CHARS = 2 * 1024 * 1024;
/** Longest title the server keeps (characters). */
export const MAX_DOCUMENT_TITLE = 1_000;

/** Pull progress (one SSE `progress` event). */
export const PullProgressSchema = z.object({
  job: z.string(),
  id: z.string(),
  state: z.string(),
  bytes: z.number(),
  total: z.number(),
  error: z.record(z.string(), z.unknown()).optional(),
});
/** Pull progress entry. */
export type PullProgress = z.infer<typeof PullProgressSchema>;

const ChunkSchema = z.object({
  choices: z.array(z.object({
    delta: z.object({ content: z.string().nullable().optional() }).passthrough(),
    finish_reason: z.string().nullable().optional(),
  })),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number() }).nullable().optional(),
}).passthrough();

/** A chat message sent to the model. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** Sampling settings the panel exposes. */
export interface Sampling {
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
}

/** What streaming a reply yields. */
export type ChatEvent =
  | { type: "delta"; text: string }
  | { type: "done"; finishReason: string | null; usage?: { prompt_tokens: number; completion_tokens: number } }
  | { type: "extra"; chunk: Record<string, unknown> };

/** The API client. */
export class ApiClient {
  constructor(readonly transport: Transport) {}

  async #json<T>(path: string, schema: z.ZodType<T>, init: RequestInit = {}): Promise<T> {
    const response = await this.#send(path, init);
    if (!response.ok) throw await problemOf(response);
    if (response.status === 204) return schema.parse(undefined);
    return schema.parse(await response.json());
  }

  async #send(path: string, init: RequestInit): Promise<Response> {
    try {
      return await this.transport(path, init);
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      throw new ApiError(0, "network", (error as Error).message);
    }
  }

  /** `GET /v1/health`. */
  health(): Promise<{ status: string; version?: string; mode?: string }> {
    return this.#json(
      "/v1/health",
      z.object({ status: z.string(), version: z.string().optional(), mode: z.string().optional() }).passthrough(),
    );
  }

  /** Chat models, downloaded first. */
  async models(): Promise<Model[]> {
    const list = await this.#json("/v1/models", z.object({ data: z.array(ModelSchema) }));
    return list.data;
  }

  /** Starts a pull and yields its progress until it ends. */
  async *pull(model: string, signal?: AbortSignal): AsyncGenerator<PullProgress> {
    const started = await this.#json(
      "/v1/models/pull",
      z.object({ job: z.string() }),
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model }), signal },
    );
    const response = await this.#send(`/v1/models/pull/${started.job}`, {
      headers: { accept: "text/event-stream" },
      signal,
    });
    if (!response.ok || !response.body) throw await problemOf(response);
    for await (const event of readSse(response.body)) {
      if (event.data === "[DONE]") return;
      const parsed = PullProgressSchema.safeParse(JSON.parse(event.data));
      if (parsed.success) yield parsed.data;
    }
  }

  /** Streams a chat reply. */
  async *chat(
    request: {
      model: string;
      messages: ChatMessage[];
      conversationId?: string;
      memory?: boolean;
      sampling?: Sampling;
    },
    signal?: AbortSignal,
  ): AsyncGenerator<ChatEvent> {
    const body = {
      model: request.model,
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
      ...request.sampling,
      ...(request.conversationId ? { conversation_id: request.conversationId } : {}),
      ...(request.memory ? { memory: true } : {}),
    };
    const response = await this.#send("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal,
    });
    if (!response.ok || !response.body) throw await problemOf(response);
    let finishReason: string | null = null;
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    for await (const event of readSse(response.body)) {
      if (event.data === "[DONE]") break;
      const raw = JSON.parse(event.data);
      if (raw && typeof raw === "object" && "error" in raw) {
        const error = raw.error as { message?: string; code?: string };
        throw new ApiError(500, error.code ?? "error", error.message ?? "The stream failed");
      }
      const chunk = ChunkSchema.parse(raw);
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (choice?.delta.content) yield { type: "delta", text: choice.delta.content };
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      // Fields other helpers add to chunks (e.g. `tabagent.citations`) reach the panel's sections.
      if ("tabagent" in chunk) yield { type: "extra", chunk };
    }
    yield { type: "done", finishReason, usage };
  }

  /** Token counts with the model's own tokenizer, and its context size. */
  tokenize(model: string, input: string[]): Promise<{ counts: number[]; context_size: number }> {
    return this.#json("/v1/tokenize", z.object({ counts: z.array(z.number()), context_size: z.number() }), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, input }),
    });
  }

  /**
   * Keeps a page the user brought into a chat as a document of that conversation. The server keeps
   * the same URL and text once per conversation and answers the existing document again.
   */
  keepPage(page: { conversationId: string; url: string; title: string; text: string }): Promise<KeptDocument> {
    return this.#json("/v1/memory/documents", KeptDocumentSchema, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        conversation_id: page.conversationId,
        url: page.url,
        ...(page.title ? { title: page.title.slice(0, MAX_DOCUMENT_TITLE) } : {}),
        text: page.text.slice(0, MAX_DOCUMENT_CHARS),
      }),
    });
  }

  /** Creates a memory conversation. */
  createConversation(title: string): Promise<Conversation> {
    return this.#json("/v1/memory/conversations", ConversationSchema, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ title: title.slice(0, 200) }),
    });
  }

  /** The newest conversations. */
  async conversations(limit = 50): Promise<Conversation[]> {
    const page = await this.#json(
      `/v1/memory/conversations?limit=${limit}`,
      z.object({ items: z.array(ConversationSchema) }),
    );
    return page.items;
  }

  /** A conversation's messages, oldest first. */
  async messages(conversationId: string): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const page: { items: StoredMessage[]; next_cursor: string | null } = await this.#json(
        `/v1/memory/conversations/${encodeURIComponent(conversationId)}/messages?limit=500${query}`,
        z.object({ items: z.array(StoredMessageSchema), next_cursor: z.string().nullable() }),
      );
      out.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  }

  /** Renames a conversation. */
  renameConversation(id: string, title: string): Promise<Conversation> {
    return this.#json(`/v1/memory/conversations/${encodeURIComponent(id)}`, ConversationSchema, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ title }),
    });
  }

  /** Deletes a conversation. */
  async deleteConversation(id: string): Promise<void> {
    const response = await this.#send(`/v1/memory/conversations/${encodeURIComponent(id)}`, { method: "DELETE" });
    if (!response.ok) throw await problemOf(response);
    await response.body?.cancel();
  }

  /** Full-text search over stored messages. */
  async search(query: string): Promise<SearchHit[]> {
    const page = await this.#json(
      `/v1/memory/search?q=${encodeURIComponent(query)}&match=any&limit=20`,
      z.object({ hits: z.array(SearchHitSchema) }),
    );
    return page.hits;
  }
}

/** The text of a stored message's content. */
export function contentText(content: StoredMessage["content"]): string {
  if (typeof content === "string") return content;
  return content.map((part) => (typeof part.text === "string" ? part.text : "")).join("");
}
