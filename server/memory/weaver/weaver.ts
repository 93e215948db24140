/**
 * The weaver's background loop. The outbox queues every new message for weaving
 * (`weave_pending` in the knowledge store, like the embedding queue); the weaver takes the user's
 * messages in order, extracts (rules, or a model at background priority), and weaves each message
 * in one knowledge transaction that also takes it off the queue and records it as `woven`. A crash
 * at any point only means the next pass redoes a message whose transaction had not committed, and
 * weaving a message again (a queue reset, a restore) finds it woven and changes nothing. After each
 * batch, new entities' names are embedded (background priority) and near-duplicates merged.
 */
import { TabAgentError } from "../../errors/mod.ts";
import type { Logger } from "../../log/mod.ts";
import type { MemoryContext } from "../_context.ts";
import { contentText } from "../_rows.ts";
import { BackgroundLoop } from "../_background_loop.ts";
import type { ContentPart } from "../types.ts";
import { extractWithModel, type GenerateJson } from "./model.ts";
import { extractWithRules } from "./rules.ts";
import {
  type ConsolidateOptions,
  ConsolidateOptionsSchema,
  type Consolidation,
  type Extraction,
  type WeaverMode,
  type WeaverStatus,
} from "./schema.ts";
import { parse } from "../_context.ts";
import {
  entitiesToEmbed,
  entityText,
  mergeByName,
  mergeBySimilarity,
  putEntityVector,
  weaveExtraction,
  type WovenMessage,
} from "./weave.ts";

/** Default cosine similarity of name embeddings at which two entities merge (MiniLM: "NYC" vs "New York City" 0.92, "Berlin" vs "Paris" 0.57). */
export const DEFAULT_MERGE_THRESHOLD = 0.85;
/** Messages per pass (rules); the model path takes fewer. */
export const WEAVE_BATCH = 64;
const MODEL_BATCH = 4;
/** Entity names embedded per batch. */
const EMBED_BATCH = 32;
/** How long the loop sleeps when idle (ms). */
export const WEAVE_IDLE_MS = 500;

/** Embeds texts at background priority. */
export type EmbedNames = (texts: string[], signal?: AbortSignal) => Promise<Float32Array[]>;

/** How the weaver is set up (`--weaver`, `--weaver-model`, `--weaver-merge-threshold`). */
export interface WeaverSettings {
  mode: WeaverMode;
  /** The GGUF the model path uses (shown in status). */
  model?: string | null;
  /** Generates constrained JSON with that model (required for mode "model"). */
  generate?: GenerateJson;
  mergeThreshold?: number;
}

/**
 * The weaver of one {@link LocalMemory}.
 *
 * @example
 * ```ts
 * const weaver = new Weaver({ ctx, settings: { mode: "rules" } });
 * await weaver.drain(); // weave everything queued now
 * ```
 */
export class Weaver {
  #loop: BackgroundLoop;
  #lastError: string | null = null;
  /** One pass at a time (the loop, drain and consolidation share the knowledge writes). */
  #busy: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: {
      ctx: MemoryContext;
      settings: WeaverSettings;
      embed?: EmbedNames;
      embeddingModel: string;
      log?: Logger;
    },
  ) {
    if (options.settings.mode === "model" && !options.settings.generate) {
      throw new TabAgentError("config_invalid", "--weaver model needs a model to extract with (--weaver-model)");
    }
    this.#loop = new BackgroundLoop({
      pass: () => this.pass(),
      idleMs: WEAVE_IDLE_MS,
      failure: "weaving memories failed",
      log: options.log,
      onPass: (error) => {
        this.#lastError = error === null ? null : error instanceof Error ? error.message : String(error);
      },
    });
  }

  get mode(): WeaverMode {
    return this.options.settings.mode;
  }

  get mergeThreshold(): number {
    return this.options.settings.mergeThreshold ?? DEFAULT_MERGE_THRESHOLD;
  }

  /** A line for health: the mode, and the last failure while it lasts. */
  get healthDetail(): string {
    const model = this.mode === "model" ? ` (${this.options.settings.model ?? "model"})` : "";
    return `weaver: ${this.mode}${model}${this.#lastError ? `, failing: ${this.#lastError}` : ""}`;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(fn, fn);
    this.#busy = run.catch(() => {});
    return run;
  }

  /** Weaves at most one batch of queued messages; returns how many left the queue. */
  pass(): Promise<number> {
    return this.#serial(() => this.#pass());
  }

  async #pass(): Promise<number> {
    if (this.mode === "off") return 0;
    const { ctx } = this.options;
    await ctx.writable();
    const db = ctx.db;
    const batch = this.mode === "model" ? MODEL_BATCH : WEAVE_BATCH;
    const queued = db.all<{ message_id: number }>(
      "knowledge",
      "SELECT message_id FROM weave_pending ORDER BY message_id LIMIT ?",
      batch,
    );
    if (!queued.length) return 0;
    const firstNew = db.get<{ id: number | null }>("knowledge", "SELECT max(id) AS id FROM entities")?.id ?? 0;
    let done = 0;
    let created = 0;
    for (const { message_id } of queued) {
      await ctx.writable();
      const db = ctx.db; // a restore may have swapped the stores while we waited
      const row = db.get<
        { id: number; conversation_id: string; role: string; content: string; parts: string | null; created_at: number }
      >(
        "conversations",
        "SELECT id, conversation_id, role, content, parts, created_at FROM messages WHERE id = ?",
        message_id,
      );
      const woven = db.get("knowledge", "SELECT 1 FROM woven WHERE message_id = ?", message_id);
      const text = row ? contentText(row.parts === null ? row.content : JSON.parse(row.parts) as ContentPart[]) : "";
      if (!row || woven || row.role !== "user" || !text.trim()) {
        // deleted, woven before, or not the user's words: nothing to learn from it
        db.run("knowledge", "DELETE FROM weave_pending WHERE message_id = ?", message_id);
        done++;
        continue;
      }
      const { extraction, extractor } = await this.#extract(text);
      await ctx.writable();
      const message: WovenMessage = {
        id: row.id,
        conversation_id: row.conversation_id,
        created_at: row.created_at,
        text,
      };
      const outcome = ctx.db.transaction("knowledge", () => {
        // woven meanwhile by another pass (drain racing the loop): leave it
        if (ctx.db.get("knowledge", "SELECT 1 FROM woven WHERE message_id = ?", message_id)) return null;
        return weaveExtraction(ctx.db, message, extraction, extractor);
      });
      created += outcome?.created.length ?? 0;
      done++;
      // rules are fast, but a big backlog should not hold the event loop
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    if (created > 0) await this.#consolidateNew(firstNew);
    return done;
  }

  async #extract(text: string): Promise<{ extraction: Extraction; extractor: string }> {
    const { settings } = this.options;
    if (settings.mode !== "model") return { extraction: extractWithRules(text), extractor: "rules" };
    const model = `model:${settings.model ?? "unknown"}`;
    try {
      return { extraction: await extractWithModel(settings.generate!, text, this.#loop.signal), extractor: model };
    } catch (error) {
      // an answer that is not the schema's is this message's problem: the rules still read it
      if (error instanceof TabAgentError && error.code === "upstream_failed") {
        this.options.log?.warn("the extraction model's answer was unusable; used the rules", {
          error: error.message,
          output: error.extensions.output,
        });
        return { extraction: extractWithRules(text), extractor: "rules" };
      }
      throw error;
    }
  }

  /** Embeds names of entities without a vector, then merges what is near-duplicate. */
  async #consolidateNew(since: number): Promise<void> {
    const { ctx } = this.options;
    await ctx.writable();
    ctx.db.transaction("knowledge", () => mergeByName(ctx.db));
    if (!(await this.#embedEntities())) return;
    await ctx.writable();
    ctx.db.transaction(
      "knowledge",
      () => mergeBySimilarity(ctx.db, this.options.embeddingModel, this.mergeThreshold, since),
    );
  }

  /** Embeds every entity lacking a vector; false when there is no embedder (merging by name only). */
  async #embedEntities(): Promise<boolean> {
    const { ctx, embed, embeddingModel } = this.options;
    if (!embed) return false;
    for (;;) {
      await ctx.ready();
      const rows = entitiesToEmbed(ctx.db, embeddingModel, EMBED_BATCH);
      if (!rows.length) return true;
      const texts = rows.map(entityText);
      const vectors = await embed(texts, this.#loop.signal);
      await ctx.writable();
      ctx.db.transaction("knowledge", () => {
        rows.forEach((row, i) => putEntityVector(ctx.db, row.id, embeddingModel, texts[i], vectors[i]));
      });
    }
  }

  /**
   * Merges duplicates over the whole graph: same name key or alias, then name embeddings at least
   * `threshold` similar (the server's default unless given). Works in any mode.
   */
  async consolidate(options: ConsolidateOptions = {}): Promise<Consolidation> {
    const parsed = parse(ConsolidateOptionsSchema, options, "consolidate");
    return await this.#serial(async () => {
      const { ctx } = this.options;
      await ctx.writable();
      const merges = ctx.db.transaction("knowledge", () => mergeByName(ctx.db));
      if (await this.#embedEntities()) {
        await ctx.writable();
        const threshold = parsed.threshold ?? this.mergeThreshold;
        merges.push(
          ...ctx.db.transaction("knowledge", () => mergeBySimilarity(ctx.db, this.options.embeddingModel, threshold)),
        );
      }
      if (merges.length) this.options.log?.info("merged duplicate entities", { merges: merges.length });
      return { merges };
    });
  }

  /** Counts, mode and the last failure. */
  async status(): Promise<WeaverStatus> {
    const { ctx } = this.options;
    await ctx.ready();
    const count = (sql: string) => ctx.db.get<{ n: number }>("knowledge", sql)!.n;
    return {
      mode: this.mode,
      model: this.mode === "model" ? this.options.settings.model ?? null : null,
      running: this.#loop.running,
      backlog: count("SELECT count(*) AS n FROM weave_pending"),
      woven: count("SELECT count(*) AS n FROM woven"),
      extractors: Object.fromEntries(
        ctx.db.all<{ extractor: string; n: number }>(
          "knowledge",
          "SELECT extractor, count(*) AS n FROM woven GROUP BY extractor ORDER BY extractor",
        ).map((row) => [row.extractor, row.n]),
      ),
      entities: count("SELECT count(*) AS n FROM entities"),
      relations: count("SELECT count(*) AS n FROM relations"),
      facts: count("SELECT count(*) AS n FROM facts"),
      current_facts: count("SELECT count(*) AS n FROM facts WHERE valid_to IS NULL"),
      merge_threshold: this.mergeThreshold,
      last_error: this.#lastError,
    };
  }

  /**
   * Weaves everything queued now. A failure to extract (the model is not pulled, inference is
   * down) stops it and shows in {@link status} as `last_error`, as it does for the loop; the
   * messages stay queued.
   */
  async drain(): Promise<number> {
    let total = 0;
    try {
      for (let n = await this.pass(); n > 0; n = await this.pass()) total += n;
      this.#lastError = null;
    } catch (error) {
      if (!(error instanceof TabAgentError) || error.code === "internal" || error.code === "storage_corrupt") {
        throw error;
      }
      this.#lastError = error.message;
      this.options.log?.warn("weaving memories failed", { error });
    }
    return total;
  }

  /** Weaves in the background until stopped. */
  start(): void {
    if (this.mode !== "off") this.#loop.start();
  }

  /** Stops the loop and waits for a pass in progress. */
  async stop(): Promise<void> {
    await this.#loop.stop();
    await this.#busy;
  }
}
