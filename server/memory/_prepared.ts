/**
 * Prepared statements kept per open database: preparing costs more than most of the reads and
 * writes they serve, and a restore reopens the stores, so the cache is keyed by the handle.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

/**
 * `make(db)`, made once per `db` and kept while `db` is alive.
 *
 * @example
 * ```ts
 * const statements = preparedOnce((db: DatabaseSync) => ({ count: db.prepare("SELECT count(*) FROM t") }));
 * statements(db).count.get();
 * ```
 */
export function preparedOnce<D extends object, T>(make: (db: D) => T): (db: D) => T {
  const cache = new WeakMap<D, T>();
  return (db) => {
    let found = cache.get(db);
    if (found === undefined) cache.set(db, found = make(db));
    return found;
  };
}

/**
 * Prepares every SQL text of `options.sql` with `prepare`, keyed as given; the statements named in
 * `options.arrays` return rows as arrays (cheaper to read on hot paths).
 *
 * @example
 * ```ts
 * const statements = preparedOnce((db: DatabaseSync) =>
 *   prepareAll((sql) => db.prepare(sql), { sql: { count: "SELECT count(*) FROM t" }, arrays: ["count"] })
 * );
 * ```
 */
export function prepareAll<K extends string>(
  prepare: (sql: string) => StatementSync,
  options: { sql: Record<K, string>; arrays?: readonly NoInfer<K>[] },
): Record<K, StatementSync> {
  const statements = Object.fromEntries(
    Object.entries<string>(options.sql).map(([name, sql]) => [name, prepare(sql)]),
  ) as Record<K, StatementSync>;
  for (const name of options.arrays ?? []) statements[name].setReturnArrays(true);
  return statements;
}

const bySql = new WeakMap<DatabaseSync, Map<string, StatementSync>>();
const arraysBySql = new WeakMap<DatabaseSync, Map<string, StatementSync>>();

/**
 * `db.prepare(sql)`, prepared once per `db` and SQL text: for statements whose text is built at run
 * time (per store, per filter), which {@link preparedOnce} cannot list up front. With `arrays`, a
 * statement of its own that returns rows as arrays (cheaper to read on hot paths).
 *
 * @example
 * ```ts
 * cachedStatement(db, `SELECT seq FROM applied WHERE source = ?`).get(feed);
 * ```
 */
export function cachedStatement(db: DatabaseSync, sql: string, options?: { arrays?: boolean }): StatementSync {
  const arrays = options?.arrays ?? false;
  const caches = arrays ? arraysBySql : bySql;
  let cache = caches.get(db);
  if (!cache) caches.set(db, cache = new Map());
  let found = cache.get(sql);
  if (!found) {
    cache.set(sql, found = db.prepare(sql));
    if (arrays) found.setReturnArrays(true);
  }
  return found;
}
