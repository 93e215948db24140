/**
 * The keyword thread of a hybrid query: its own read-only connections to the stores, so the FTS5
 * list is read while the index worker (its parent) searches the vector index. Started by
 * {@link KeywordThread}.
 */
/// <reference lib="deno.worker" />
import { openStoreReadOnly, storeFile } from "../stores.ts";
import { lowerThreadPriority } from "../_thread_priority.ts";
import { keywordKeysOf, type KeywordSources } from "./engine.ts";
import type { KeywordReply, KeywordRequest } from "./keyword_thread.ts";

lowerThreadPriority();

let sources: KeywordSources | undefined;

function close(): void {
  sources?.conversations.close();
  sources?.knowledge.close();
  sources?.tool_results.close();
  sources = undefined;
}

self.onmessage = (event: MessageEvent<KeywordRequest>) => {
  const request = event.data;
  let reply: KeywordReply;
  try {
    if (request.kind === "close") {
      close();
      reply = { id: request.id, keys: [] };
    } else {
      sources ??= {
        conversations: openStoreReadOnly(`${request.storeDir}/${storeFile("conversations")}`),
        knowledge: openStoreReadOnly(`${request.storeDir}/${storeFile("knowledge")}`),
        tool_results: openStoreReadOnly(`${request.storeDir}/${storeFile("tool_results")}`),
      };
      reply = { id: request.id, keys: keywordKeysOf(sources, request.query, request.fused) };
    }
  } catch (error) {
    reply = { id: request.id, error: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(reply);
};
