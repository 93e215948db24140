/**
 * Prepared statements kept per open database: preparing costs more than most of the reads and
 * writes they serve, and a restore reopens the stores, so the cache is keyed by the handle.
 */

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
