/**
 * What the per-store halves of {@link LocalMemory} share: the open stores with a statement cache
 * ({@link StoreAccess}), the gates a call waits on ({@link MemoryContext}), and small helpers for
 * validation, pages and size limits.
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { z } from "zod";
import { MEMORY_DEFAULT_PAGE_SIZE, MEMORY_MAX_MESSAGE_BYTES } from "../config/mod.ts";
import { TabAgentError, validationError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { encodeCursor } from "./_rows.ts";
import type { SearchPool } from "./_search_pool.ts";
import type { StoreName, Stores } from "./stores.ts";
import { type Page, type PageOptions, PageOptionsSchema } from "./types.ts";

/** The open stores and their prepared statements (one per SQL text per store, prepared on first use). */
export class StoreAccess {
  readonly stores: Stores;
  /** False only when every message is known to be in the full-text index (see _message_index.ts). */
  messagesBehind = true;
  #statements = new Map<DatabaseSync, Map<string, StatementSync>>();

  constructor(stores: Stores) {
    this.stores = stores;
  }

  /** The cached statement for `sql` on `db`. */
  prepare(db: DatabaseSync, sql: string): StatementSync {
    let cache = this.#statements.get(db);
    if (!cache) {
      cache = new Map();
      this.#statements.set(db, cache);
    }
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  }

  /** The cached statement for `sql` on `store`. */
  sql(store: StoreName, sql: string): StatementSync {
    return this.prepare(this.stores[store], sql);
  }

  /** The first row of `sql`, if any. */
  get<T>(store: StoreName, sql: string, ...args: SQLInputValue[]): T | undefined {
    return this.sql(store, sql).get(...args) as T | undefined;
  }

  /** Every row of `sql`. */
  all<T>(store: StoreName, sql: string, ...args: SQLInputValue[]): T[] {
    return this.sql(store, sql).all(...args) as T[];
  }

  /** Runs `sql` once. */
  run(store: StoreName, sql: string, ...args: SQLInputValue[]) {
    return this.sql(store, sql).run(...args);
  }

  /** Runs `fn` in one write transaction on `store`. */
  transaction<T>(store: StoreName, fn: () => T): T {
    const db = this.stores[store];
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      db.exec("COMMIT");
      return result;
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }

  /** Records `op` in `store`'s outbox (call inside the transaction that makes the change). */
  outboxAdd(store: StoreName, op: string, payload: unknown): void {
    this.run(
      store,
      "INSERT INTO outbox(op, payload, created_at) VALUES (?, ?, ?)",
      op,
      JSON.stringify(payload),
      Date.now(),
    );
  }

  /** Forgets every prepared statement (before the stores close). */
  clear(): void {
    this.#statements.clear();
  }
}

/** What an operation needs from the {@link LocalMemory} that runs it. */
export interface MemoryContext {
  /** The folder holding the store files. */
  readonly dir: string;
  readonly log?: Logger;
  /** The stores as open now (a restore replaces them). */
  readonly db: StoreAccess;
  /** The search workers, or null to search inline. */
  readonly pool: SearchPool | null;
  /** True while a restore holds the stores, or after close: a read must then await {@link ready}. */
  readonly readBlocked: boolean;
  /** True while a backup or restore holds the stores, or after close: a write must then await {@link writable}. */
  readonly writeBlocked: boolean;
  /** Waits until reads may run (no restore in progress); throws `unavailable` once closed. */
  ready(): Promise<void>;
  /** Waits until writes may run (no backup or restore in progress); throws `unavailable` once closed. */
  writable(): Promise<void>;
}

/** Parses `value` with `schema` or throws `validation_failed` naming the field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(where, result.error.issues);
  return result.data;
}

/** The page size and cursor of list options. */
export function pageOptions(options: PageOptions | undefined): { limit: number; cursor?: string } {
  const parsed = parse(PageOptionsSchema, options ?? {}, "page options");
  return { limit: parsed.limit ?? MEMORY_DEFAULT_PAGE_SIZE, cursor: parsed.cursor };
}

/** A page of `limit` items from `rows` (read with `limit + 1` to know whether more follow). */
export function pageOf<T, R>(
  rows: R[],
  limit: number,
  map: (row: R) => T,
  key: (row: R) => [number] | [number, string],
): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  return { items: kept.map(map), next_cursor: more ? encodeCursor(key(kept[kept.length - 1])) : null };
}

/** `payload_too_large` for `what` of `bytes`. */
export function tooLarge(what: string, bytes: number): TabAgentError {
  return new TabAgentError(
    "payload_too_large",
    `${what} is ${bytes} bytes; the limit is ${MEMORY_MAX_MESSAGE_BYTES}`,
    { limit: MEMORY_MAX_MESSAGE_BYTES },
  );
}

const encoder = new TextEncoder();

/** The UTF-8 size of `text`, measured only when the cheap bound could exceed the message limit. */
export function byteLength(text: string): number {
  // UTF-8 is at most 3 bytes per UTF-16 unit.
  return text.length * 3 <= MEMORY_MAX_MESSAGE_BYTES ? text.length : encoder.encode(text).length;
}
