/**
 * A search worker: its own read-only connections (WAL lets them read while the main thread writes),
 * so a long FTS query never blocks the server's event loop. Started by {@link SearchPool}. It yields
 * its CPU after each search it answers, so that the event loop never waits behind a run of them
 * (see `_thread_priority.ts`).
 */
/// <reference lib="deno.worker" />
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { FACT_SEARCH_SQL, messageSearchSql, searchHitsBody } from "./_rows.ts";
import { openStoreReadOnly, storeFile } from "./stores.ts";
import type { SearchReply, SearchRequest } from "./_search_pool.ts";
import { type LaneSearch, serveSearchLanes } from "./_search_lanes.ts";
import { lowerThreadPriority, yieldThread } from "./_thread_priority.ts";

lowerThreadPriority();

let conversations: DatabaseSync | undefined;
let knowledge: DatabaseSync | undefined;
const statements = new Map<string, StatementSync>();
let initError = "not initialised";

function statement(db: DatabaseSync, sql: string): StatementSync {
  let found = statements.get(sql);
  if (!found) {
    found = db.prepare(sql);
    statements.set(sql, found);
  }
  return found;
}

function messageRows(search: LaneSearch): Record<string, unknown>[] {
  if (!conversations) throw new Error(`the search worker could not open the stores: ${initError}`);
  const sql = messageSearchSql(search.conversationId !== undefined);
  const args = search.conversationId !== undefined
    ? [search.query, search.conversationId, search.limit]
    : [search.query, search.limit];
  return statement(conversations, sql).all(...args) as Record<string, unknown>[];
}

function messagesBody(search: LaneSearch): Uint8Array<ArrayBuffer> {
  return searchHitsBody(messageRows(search));
}

self.onmessage = (event: MessageEvent<SearchRequest>) => {
  const request = event.data;
  let reply: SearchReply;
  try {
    if (request.kind === "close") {
      conversations?.close();
      knowledge?.close();
      conversations = knowledge = undefined;
      statements.clear();
      reply = { id: request.id, rows: [] };
    } else if (!conversations && request.kind !== "init") {
      reply = { id: request.id, error: `the search worker could not open the stores: ${initError}` };
    } else if (request.kind === "init") {
      try {
        conversations = openStoreReadOnly(`${request.dir}/${storeFile("conversations")}`);
        knowledge = openStoreReadOnly(`${request.dir}/${storeFile("knowledge")}`);
      } catch (error) {
        initError = error instanceof Error ? error.message : String(error);
        throw error;
      }
      serveSearchLanes(request.lanes, messagesBody, yieldThread);
      reply = { id: request.id, rows: [] };
    } else if (request.kind === "messages") {
      if (request.answer === "body") {
        const body = messagesBody(request);
        self.postMessage({ id: request.id, body } satisfies SearchReply, [body.buffer]);
        yieldThread();
        return;
      }
      reply = { id: request.id, rows: messageRows(request) };
    } else {
      reply = {
        id: request.id,
        rows: statement(knowledge!, FACT_SEARCH_SQL).all(request.query, request.limit) as Record<string, unknown>[],
      };
    }
  } catch (error) {
    reply = { id: request.id, error: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(reply);
  if (request.kind === "messages" || request.kind === "facts") yieldThread();
};
