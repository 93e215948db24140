/**
 * The keyword thread of a hybrid query: its own read-only connections to the stores, so the FTS5
 * list is read while the index worker (its parent) searches the vector index. Started by
 * {@link KeywordThread}.
 */
/// <reference lib="deno.worker" />
import { lowerThreadPriority } from "../_thread_priority.ts";
import { keywordKeysOf, type KeywordSources } from "./engine.ts";
import {
  claimJob,
  closeKeywordSources,
  type KeywordReply,
  type KeywordRequest,
  openKeywordSources,
} from "./keyword_thread.ts";

lowerThreadPriority();

let sources: KeywordSources | undefined;
/** Who runs each job (see `CLAIM_SLOTS`). */
let claims: Int32Array | undefined;

self.onmessage = (event: MessageEvent<KeywordRequest>) => {
  const request = event.data;
  let reply: KeywordReply;
  try {
    if (request.kind === "claims") {
      claims = new Int32Array(request.claims);
      return;
    } else if (request.kind === "close") {
      closeKeywordSources(sources);
      sources = undefined;
      reply = { id: request.id, keys: [] };
    } else if (claims && !claimJob(claims, request.slot, request.token)) {
      reply = { id: request.id, keys: [] }; // taken back: its asker read the list itself
    } else {
      sources ??= openKeywordSources(request.storeDir);
      reply = { id: request.id, keys: keywordKeysOf(sources, request.query, request.fused) };
    }
  } catch (error) {
    reply = { id: request.id, error: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(reply);
};
