/**
 * Embedding on write: takes the items the outbox queued (`pending`), embeds their text in batches
 * at background priority, and stores each vector, which takes the item off the queue in the same
 * transaction. Nothing else is recorded, so a crash at any point only means the next pass embeds
 * again what was not stored yet (storing is idempotent), and the index follows the store's log.
 */
import { TabAgentError } from "../../errors/mod.ts";
import type { Logger } from "../../log/mod.ts";
import type { MemoryClient } from "../client.ts";
import type { PendingEmbedding } from "../types.ts";
import { BackgroundLoop } from "../_background_loop.ts";
import { jsonOrNull, toolResultText } from "../_rows.ts";

/** Embeds texts (background priority); the vectors come back in the same order. */
export type EmbedTexts = (texts: string[], signal?: AbortSignal) => Promise<Float32Array[]>;

/** Items per embedding batch. */
export const EMBED_BATCH = 32;
/** How long the writer sleeps when the queue is empty or embedding failed (ms). */
export const EMBED_IDLE_MS = 500;

function textOfParts(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part) => (part && typeof part === "object" && "text" in part ? String(part.text) : ""))
      .filter(Boolean).join("\n");
  }
  return "";
}

/** The text an item is embedded from, or null when it has none (or is gone). */
export async function textOf(memory: MemoryClient, item: PendingEmbedding): Promise<string | null> {
  try {
    switch (item.item_kind as string) {
      case "message":
        return textOfParts((await memory.getMessage(item.item_id)).content);
      case "fact":
        return (await memory.getFact(item.item_id)).text;
      case "episode": {
        const episode = await memory.getEpisode(item.item_id);
        return `${episode.task}\n${episode.outcome}`;
      }
      case "tool_result": {
        const tool = await memory.getToolResult(item.item_id);
        return toolResultText({
          tool_name: tool.tool_name,
          arguments: jsonOrNull(tool.arguments),
          result: jsonOrNull(tool.result),
          error: tool.error,
        });
      }
      case "summary": {
        const page = await memory.listSummaries(item.conversation_id ?? "", { limit: 500 });
        return page.items.find((s) => s.id === item.item_id)?.text ?? null;
      }
      default: {
        // kinds added later (tool results, page chunks) expose a generic reader
        const reader = (memory as { embeddableText?: (kind: string, id: string) => Promise<string | null> })
          .embeddableText;
        return reader ? await reader.call(memory, item.item_kind, item.item_id) : null;
      }
    }
  } catch (error) {
    if (error instanceof TabAgentError && error.code === "not_found") return null;
    throw error;
  }
}

/**
 * The background loop. `pass()` embeds one batch and says how many it stored; `start()` keeps
 * calling it while there is work.
 *
 * @example
 * ```ts
 * const writer = new EmbeddingWriter({ memory, model: "sentence-transformers/all-MiniLM-L6-v2", embed });
 * writer.start();
 * ```
 */
export class EmbeddingWriter {
  /** Items with no text to embed: skipped until the process restarts (the outbox drops deleted ones). */
  #skipped = new Set<string>();
  #loop: BackgroundLoop;

  constructor(
    private readonly options: {
      memory: MemoryClient;
      model: string;
      embed: EmbedTexts;
      log?: Logger;
      /** Called after a batch was stored (the index catches up then). */
      onStored?: (count: number) => void;
    },
  ) {
    this.#loop = new BackgroundLoop({
      pass: () => this.pass(),
      idleMs: EMBED_IDLE_MS,
      failure: "embedding memories failed",
      log: options.log,
    });
  }

  /** Embeds and stores at most one batch of queued items; returns how many were stored. */
  async pass(): Promise<number> {
    const { memory, model, embed } = this.options;
    const page = await memory.listPendingEmbeddings({ limit: EMBED_BATCH + this.#skipped.size });
    const items = page.items.filter((item) => !this.#skipped.has(`${item.item_kind}:${item.item_id}`))
      .slice(0, EMBED_BATCH);
    if (!items.length) return 0;
    const texts: { item: PendingEmbedding; text: string }[] = [];
    for (const item of items) {
      const text = await textOf(memory, item);
      if (text === null || !text.trim()) this.#skipped.add(`${item.item_kind}:${item.item_id}`);
      else texts.push({ item, text });
    }
    if (!texts.length) return 0;
    const vectors = await embed(texts.map((t) => t.text), this.#loop.signal);
    let stored = 0;
    for (const [i, { item }] of texts.entries()) {
      try {
        await memory.putEmbedding({ item_kind: item.item_kind, item_id: item.item_id, model, vector: [...vectors[i]] });
        stored++;
      } catch (error) {
        // deleted while it was being embedded: the outbox has dropped (or will drop) its queue entry
        if (error instanceof TabAgentError && error.code === "not_found") continue;
        throw error;
      }
    }
    if (stored) this.options.onStored?.(stored);
    return stored;
  }

  /** Embeds until the queue is empty, then polls. */
  start(): void {
    this.#loop.start();
  }

  /** Embeds everything queued now (tests, and `memory stats` after a flush). */
  async drain(): Promise<number> {
    let total = 0;
    for (let n = await this.pass(); n > 0; n = await this.pass()) total += n;
    return total;
  }

  /** Stops the loop and waits for a batch in progress. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }
}
