/**
 * A search worker stuck in every query, as one is in a runaway FTS query (SQLite cannot be
 * interrupted from outside): it answers `init` and `close` like the real one and never a query.
 * For SearchPool's deadline tests.
 */
/// <reference lib="deno.worker" />
import type { SearchRequest } from "../_search_pool.ts";

self.onmessage = (event: MessageEvent<SearchRequest>) => {
  const request = event.data;
  if (request.kind === "init" || request.kind === "close") self.postMessage({ id: request.id, rows: [] });
};
