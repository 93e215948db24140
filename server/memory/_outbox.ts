/**
 * The outbox worker: brings the derived stores (`embeddings`, `summaries`, `meta`) up to date with
 * the truth stores. It reads two kinds of feed from a truth store: a *tail* (rows of an append-only
 * table past a sequence number: new messages, facts, episodes, …) and an *outbox* table (changes a
 * tail cannot show, such as deletions, written in the same transaction as the change). Each derived
 * store records, in the same transaction as the effect, the last sequence number it applied from
 * each feed (`applied`), so applying twice is a no-op and a crash at any point only means the next
 * step redoes what was not yet committed.
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import { MEMORY_OUTBOX_BATCH, MEMORY_OUTBOX_BUSY_PAUSE_MS } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import { cachedStatement } from "./_prepared.ts";
import { catchUpMessageIndex, messageIndexBacklog } from "./_message_index.ts";
import type { StoreName, Stores } from "./stores.ts";

type Row = Record<string, SQLInputValue> & { id: number };
type Effect = (target: DatabaseSync, rows: Row[]) => void;

interface Feed {
  /** Stable name: the key in each target's `applied` table. */
  name: string;
  store: StoreName;
  /** Reads rows with `id > ?`, oldest first, at most `?`. */
  sql: string;
  /** Outbox feeds delete what every target has applied. */
  outbox: boolean;
  effects: Partial<Record<StoreName, Effect>>;
}

function count(name: string): Effect {
  return (meta, rows) => addCounter(meta, name, rows.length);
}

function addCounter(meta: DatabaseSync, name: string, amount: number): void {
  if (amount === 0) return;
  meta.prepare(
    "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
  ).run(name, amount);
}

function queue(kind: string, withConversation: boolean): Effect {
  return (embeddings, rows) => {
    const insert = embeddings.prepare(
      `INSERT OR IGNORE INTO pending(item_kind, item_id, conversation_id, queued_at)
       SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM embeddings WHERE item_kind = ? AND item_id = ?)`,
    );
    const now = Date.now();
    for (const row of rows) {
      insert.run(kind, row.id, withConversation ? row.conversation_id : null, now, kind, row.id);
    }
  };
}

/** Queues messages for the weaver (weaver/weaver.ts), unless already woven. */
const queueWeave: Effect = (knowledge, rows) => {
  const insert = knowledge.prepare(
    `INSERT OR IGNORE INTO weave_pending(message_id, conversation_id, queued_at)
     SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM woven WHERE message_id = ?)`,
  );
  const now = Date.now();
  for (const row of rows) insert.run(row.id, row.conversation_id, now, row.id);
};

function tail(name: string, store: StoreName, table: string, effects: Feed["effects"], columns = "id"): Feed {
  return {
    name,
    store,
    sql: `SELECT ${columns} FROM ${table} WHERE id > ? ORDER BY id LIMIT ?`,
    outbox: false,
    effects,
  };
}

function outbox(store: StoreName, effects: Feed["effects"]): Feed {
  return {
    name: `${store}.outbox`,
    store,
    sql: "SELECT id, op, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
    outbox: true,
    effects,
  };
}

function onOp(handlers: Record<string, (target: DatabaseSync, payload: Record<string, unknown>) => void>): Effect {
  return (target, rows) => {
    for (const row of rows) handlers[row.op as string]?.(target, JSON.parse(row.payload as string));
  };
}

/** Outbox operations the truth stores write. */
export const OUTBOX_OPS = {
  conversationCreated: "conversation.created",
  conversationDeleted: "conversation.deleted",
  factDeleted: "fact.deleted",
  documentDeleted: "document.deleted",
} as const;

/**
 * Every feed, in the order a step applies them: outboxes (deletions) before tails, so a tail never
 * re-queues an item whose deletion is already waiting.
 */
const FEEDS: Feed[] = [
  outbox("conversations", {
    embeddings: onOp({
      [OUTBOX_OPS.conversationDeleted]: (db, p) => {
        db.prepare("DELETE FROM embeddings WHERE conversation_id = ?").run(p.id as string);
        db.prepare("DELETE FROM pending WHERE conversation_id = ?").run(p.id as string);
      },
      [OUTBOX_OPS.documentDeleted]: (db, p) => {
        for (const chunk of p.chunks as number[]) {
          db.prepare("DELETE FROM embeddings WHERE item_kind = 'chunk' AND item_id = ?").run(chunk);
          db.prepare("DELETE FROM pending WHERE item_kind = 'chunk' AND item_id = ?").run(chunk);
        }
      },
    }),
    summaries: onOp({
      [OUTBOX_OPS.conversationDeleted]: (db, p) => {
        db.prepare("DELETE FROM summaries WHERE conversation_id = ?").run(p.id as string);
      },
    }),
    knowledge: onOp({
      [OUTBOX_OPS.conversationDeleted]: (db, p) => {
        db.prepare("DELETE FROM weave_pending WHERE conversation_id = ?").run(p.id as string);
      },
    }),
    meta: onOp({
      [OUTBOX_OPS.conversationCreated]: (db) => addCounter(db, "conversations_created", 1),
      [OUTBOX_OPS.conversationDeleted]: (db) => addCounter(db, "conversations_deleted", 1),
    }),
  }),
  outbox("knowledge", {
    embeddings: onOp({
      [OUTBOX_OPS.factDeleted]: (db, p) => {
        db.prepare("DELETE FROM embeddings WHERE item_kind = 'fact' AND item_id = ?").run(p.id as number);
        db.prepare("DELETE FROM pending WHERE item_kind = 'fact' AND item_id = ?").run(p.id as number);
      },
    }),
    meta: onOp({ [OUTBOX_OPS.factDeleted]: (db) => addCounter(db, "facts_deleted", 1) }),
  }),
  tail("conversations.messages", "conversations", "messages", {
    embeddings: queue("message", true),
    meta: count("messages_written"),
    knowledge: queueWeave,
  }, "id, conversation_id"),
  {
    // a page's chunks, with their document's conversation (deleting that takes the chunks along)
    name: "conversations.document_chunks",
    store: "conversations",
    sql: `SELECT c.id AS id, d.conversation_id AS conversation_id FROM document_chunks c
      JOIN documents d ON d.id = c.document_id WHERE c.id > ? ORDER BY c.id LIMIT ?`,
    outbox: false,
    effects: { embeddings: queue("chunk", true), meta: count("document_chunks_added") },
  },
  tail("knowledge.facts", "knowledge", "facts", { embeddings: queue("fact", false), meta: count("facts_added") }),
  tail("tool_results.tool_results", "tool_results", "tool_results", {
    embeddings: queue("tool_result", false),
    meta: count("tool_results_recorded"),
  }),
  tail("experience.episodes", "experience", "episodes", {
    embeddings: queue("episode", false),
    meta: count("episodes_recorded"),
  }),
  tail("summaries.summaries", "summaries", "summaries", {
    embeddings: queue("summary", true),
    meta: count("summaries_written"),
  }, "id, conversation_id"),
];

function appliedSeq(target: DatabaseSync, feed: string): number {
  const row = cachedStatement(target, "SELECT seq FROM applied WHERE source = ?").get(feed) as
    | { seq: number }
    | undefined;
  return row?.seq ?? 0;
}

function applyFeed(stores: Stores, feed: Feed, batch: number): number {
  const targets = Object.keys(feed.effects) as StoreName[];
  const from = Math.min(...targets.map((target) => appliedSeq(stores[target], feed.name)));
  // an idle step (every 250 ms on the event loop) prepared ~30 statements, 0.25 ms; now it reuses them
  const rows = cachedStatement(stores[feed.store], feed.sql).all(from, batch) as Row[];
  if (rows.length === 0) return 0;
  for (const target of targets) {
    const db = stores[target];
    db.exec("BEGIN IMMEDIATE");
    try {
      const seq = appliedSeq(db, feed.name);
      const fresh = rows.filter((row) => row.id > seq);
      if (fresh.length > 0) {
        feed.effects[target]!(db, fresh);
        cachedStatement(
          db,
          "INSERT INTO applied(source, seq) VALUES (?, ?) ON CONFLICT(source) DO UPDATE SET seq = excluded.seq",
        ).run(feed.name, fresh[fresh.length - 1].id);
      }
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }
  if (feed.outbox) {
    stores[feed.store].prepare("DELETE FROM outbox WHERE id <= ?").run(rows[rows.length - 1].id);
  }
  return rows.length;
}

/**
 * Indexes the messages waiting for the full-text index (at most a few hundred: see
 * _message_index.ts), then applies at most `batch` rows of every feed; returns how many rows were
 * applied in all.
 */
export function applyOutboxStep(stores: Stores, batch = MEMORY_OUTBOX_BATCH): number {
  let applied = catchUpMessageIndex(stores.conversations);
  for (const feed of FEEDS) applied += applyFeed(stores, feed, batch);
  return applied;
}

/** How far behind the derived stores are: rows waiting in outboxes and tails, and messages waiting for the index. */
export function outboxBacklog(stores: Stores): number {
  let backlog = messageIndexBacklog(stores.conversations);
  for (const feed of FEEDS) {
    const targets = Object.keys(feed.effects) as StoreName[];
    const from = Math.min(...targets.map((target) => appliedSeq(stores[target], feed.name)));
    const table = feed.outbox ? "outbox" : feed.sql.match(/FROM (\w+)/)![1];
    backlog += (stores[feed.store].prepare(`SELECT count(*) AS n FROM ${table} WHERE id > ?`).get(from) as {
      n: number;
    }).n;
  }
  return backlog;
}

/** Forgets what the derived stores applied from the tails, so the next steps re-queue every item. */
export function resetTails(stores: Stores): void {
  for (const feed of FEEDS) {
    if (feed.outbox) continue;
    for (const target of Object.keys(feed.effects) as StoreName[]) {
      if (target === "meta") continue; // counters count writes; replaying would count them twice
      stores[target].prepare("DELETE FROM applied WHERE source = ?").run(feed.name);
    }
  }
}

/**
 * Runs {@link applyOutboxStep} in the background: every MEMORY_OUTBOX_BUSY_PAUSE_MS while there is
 * work, else every `intervalMs`.
 */
export class OutboxWorker {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #failures = 0;

  constructor(
    private readonly options: { stores: () => Stores; intervalMs: number; log?: Logger },
  ) {}

  /** Starts the loop. */
  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#tick(), ms);
  }

  #tick(): void {
    let applied = 0;
    try {
      applied = applyOutboxStep(this.options.stores());
      this.#failures = 0;
    } catch (error) {
      this.#failures++;
      this.options.log?.error("outbox step failed; will retry", { error, failures: this.#failures });
    }
    const backoff = Math.min(30_000, this.options.intervalMs * 2 ** this.#failures);
    this.#schedule(applied > 0 ? MEMORY_OUTBOX_BUSY_PAUSE_MS : this.#failures ? backoff : this.options.intervalMs);
  }

  /** Applies everything pending now, synchronously in steps. */
  drain(): void {
    while (applyOutboxStep(this.options.stores()) > 0) {
      // keep going until every feed is caught up
    }
  }

  /** Stops the loop (a step in progress finishes first: steps are synchronous). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
