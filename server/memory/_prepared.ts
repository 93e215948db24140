/**
 * Prepared statements kept per open database: preparing costs more than most of the reads and
 * writes they serve, and a restore reopens the stores, so the cache is keyed by the handle.
 */
import type { StatementSync } from "node:sqlite";

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
