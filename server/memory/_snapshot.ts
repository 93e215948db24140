/**
 * Point reads on a held snapshot. On a WAL database SQLite starts and ends a read transaction
 * around every statement outside one, and that costs about as much as the read itself.
 * {@link SnapshotReader} keeps a second, read-only connection per store with ONE read transaction
 * open across reads, and renews it before a read when
 * - this process wrote to the store since the snapshot began (the writer connection's
 *   `total_changes()` moved: every write through it counts, whatever the path: appends, imports,
 *   the outbox worker, index catch-up, deletes), so a read always sees this process's
 *   acknowledged writes;
 * - or the snapshot is older than {@link MEMORY_READ_SNAPSHOT_MAX_AGE_MS}, so writes by other
 *   processes show within that bound.
 * While the writer is inside a write transaction the read goes to the writer itself (it sees its
 * own uncommitted rows, as before). The snapshot is let go {@link MEMORY_READ_SNAPSHOT_IDLE_MS}
 * after the last read, so checkpoints are never held back for long and an idle server holds none.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { MEMORY_READ_SNAPSHOT_IDLE_MS, MEMORY_READ_SNAPSHOT_MAX_AGE_MS } from "../config/mod.ts";
import { openStoreReadOnly } from "./stores.ts";

/** A read-only connection to one store that holds a snapshot across point reads; see the module doc. */
export class SnapshotReader {
  readonly #writer: DatabaseSync;
  readonly #path: string;
  readonly #changes: StatementSync;
  #db: DatabaseSync | null = null;
  #begin: StatementSync | null = null;
  #commit: StatementSync | null = null;
  #statements = new Map<string, StatementSync>();
  /** True while a read transaction is open on the reader. */
  #held = false;
  /** The writer's `total_changes()` when the snapshot began. */
  #seen = -1;
  #startedAt = 0;
  #lastReadAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** A reader for the store whose writes go through `writer`; it connects on first use. */
  constructor(writer: DatabaseSync) {
    this.#writer = writer;
    this.#path = writer.location()!;
    this.#changes = writer.prepare("SELECT total_changes()");
    this.#changes.setReturnArrays(true);
  }

  /** True while a snapshot is held (for tests and diagnostics). */
  get holding(): boolean {
    return this.#held;
  }

  /**
   * Call right before a read: renews the snapshot when it may miss a write (see the module doc).
   * Returns true when the read may run on this reader's statements, false when it must run on
   * the writer (which is inside a write transaction).
   */
  refresh(): boolean {
    const now = performance.now();
    const changes = (this.#changes.get() as unknown as [number])[0];
    if (this.#held) {
      if (changes === this.#seen && now - this.#startedAt < MEMORY_READ_SNAPSHOT_MAX_AGE_MS) {
        this.#lastReadAt = now;
        return true;
      }
      this.#end();
    }
    if (this.#writer.isTransaction) return false;
    if (!this.#db) this.#connect();
    // Deferred: the snapshot is taken by the read that follows, before anything else can write.
    this.#begin!.run();
    this.#held = true;
    this.#seen = changes;
    this.#startedAt = this.#lastReadAt = now;
    if (this.#timer === undefined) this.#schedule(MEMORY_READ_SNAPSHOT_IDLE_MS);
    return true;
  }

  /** The cached statement for `sql` on the reader (use it only after {@link refresh} returned true). */
  prepare(sql: string, arrays = false): StatementSync {
    const key = arrays ? `[]${sql}` : sql;
    let statement = this.#statements.get(key);
    if (!statement) {
      if (!this.#db) this.#connect();
      statement = this.#db!.prepare(sql);
      if (arrays) statement.setReturnArrays(true);
      this.#statements.set(key, statement);
    }
    return statement;
  }

  /** Ends the snapshot now (before a backup, or when reads stop). */
  release(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#end();
  }

  /** Ends the snapshot and closes the connection (before the store files close or are swapped). */
  close(): void {
    this.release();
    this.#statements.clear();
    this.#begin = this.#commit = null;
    const db = this.#db;
    this.#db = null;
    if (db?.isOpen) db.close();
  }

  #connect(): void {
    const db = openStoreReadOnly(this.#path);
    this.#db = db;
    this.#begin = db.prepare("BEGIN");
    this.#commit = db.prepare("COMMIT");
  }

  #end(): void {
    if (!this.#held) return;
    this.#held = false;
    if (this.#db?.isTransaction) this.#commit!.run();
  }

  #schedule(ms: number): void {
    const timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#held) return;
      const idle = performance.now() - this.#lastReadAt;
      if (idle < MEMORY_READ_SNAPSHOT_IDLE_MS) this.#schedule(MEMORY_READ_SNAPSHOT_IDLE_MS - idle);
      else this.#end();
    }, ms);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
