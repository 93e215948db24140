/** Reads a cursor-paged listing to its end, for tests that compare whole stores. */

/**
 * Every item of a paged listing, following `next_cursor` until it is null.
 *
 * @example
 * ```ts
 * const entities = await allPages((cursor) => memory.listEntities({ cursor, limit: 500 }));
 * ```
 */
export async function allPages<T>(
  list: (cursor?: string) => Promise<{ items: T[]; next_cursor: string | null }>,
): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    out.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return out;
}
