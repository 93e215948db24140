/**
 * The full-text index of messages (`messages_fts`), kept up to date in code rather than by a
 * per-row trigger. FTS5 flushes its pending terms to a new segment at every statement that writes
 * to it, so a trigger firing once per inserted row costs a segment per message (about 20 µs each
 * here), and a transaction of one message costs one segment (about 70 µs) whatever its size. One
 * `INSERT … SELECT` over a range of new messages costs a few µs per message instead.
 *
 * So an append indexes its messages in its own transaction once at least
 * {@link MESSAGE_INDEX_DEFER_LIMIT} messages wait (batches of that size index themselves), and
 * otherwise leaves them for the next catch-up: before any message search (so a search always sees
 * every acknowledged message), in each outbox step (so the backlog is gone within
 * `MEMORY_OUTBOX_INTERVAL_MS`), and in `flush()`. Messages are committed before they are indexed;
 * the index is derived and `fts_indexed` records, in the same transaction as each catch-up, the
 * last message id the index holds, so a crash anywhere only leaves work for the next catch-up.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { prepareAll, preparedOnce } from "./_prepared.ts";

/** Messages left for a later catch-up at most; an append that brings the backlog to this many indexes it. */
export const MESSAGE_INDEX_DEFER_LIMIT = 256;

const INDEX = "messages_fts";

const prepared = preparedOnce((db: DatabaseSync) =>
  prepareAll((sql) => db.prepare(sql), {
    sql: {
      seq: `SELECT seq FROM fts_indexed WHERE name = '${INDEX}'`,
      last: "SELECT coalesce(max(id), 0) AS id FROM messages",
      index: `INSERT INTO ${INDEX}(rowid, content) SELECT id, content FROM messages WHERE id > ? ORDER BY id`,
      record: `UPDATE fts_indexed SET seq = ? WHERE name = '${INDEX}'`,
    },
    arrays: ["seq", "last"],
  })
);

function single(statement: StatementSync): number {
  return (statement.get() as unknown as [number])[0];
}

/** The id of the last message the full-text index holds. */
export function indexedUpTo(db: DatabaseSync): number {
  return single(prepared(db).seq);
}

/**
 * Indexes every message after `from` (the current {@link indexedUpTo}) up to `last`, the newest
 * message id. Call inside a write transaction on the conversations store.
 */
export function indexMessagesAfter(db: DatabaseSync, from: number, last: number): void {
  if (last <= from) return;
  const statements = prepared(db);
  statements.index.run(from);
  statements.record.run(last);
}

/** Indexes every message that waits; call inside a write transaction on the conversations store. */
export function indexPendingMessages(db: DatabaseSync): void {
  indexMessagesAfter(db, indexedUpTo(db), single(prepared(db).last));
}

/** How many messages wait for the index. */
export function messageIndexBacklog(db: DatabaseSync): number {
  const statements = prepared(db);
  return Math.max(0, single(statements.last) - indexedUpTo(db));
}

/** Indexes every message that waits, in one transaction of its own; returns how many there were. */
export function catchUpMessageIndex(db: DatabaseSync): number {
  const statements = prepared(db);
  const from = indexedUpTo(db);
  if (single(statements.last) <= from) return 0;
  db.exec("BEGIN IMMEDIATE");
  try {
    const start = indexedUpTo(db);
    const last = single(statements.last);
    indexMessagesAfter(db, start, last);
    db.exec("COMMIT");
    return last - start;
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

/** Rebuilds the index from the messages table (and records that it holds them all), in one transaction. */
export function rebuildMessageIndex(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(`INSERT INTO ${INDEX}(${INDEX}) VALUES ('rebuild')`);
    prepared(db).record.run(single(prepared(db).last));
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}
