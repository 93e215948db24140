/**
 * The keyword thread of a hybrid query: its own read-only connections to the stores, so the FTS5
 * list is read while the index worker (its parent) searches the vector index. Started by
 * {@link KeywordThread}; its jobs come through shared memory (see keyword_thread.ts).
 */
/// <reference lib="deno.worker" />
import { lowerThreadPriority } from "../_thread_priority.ts";
import { keywordKeysOf, type KeywordSources } from "./engine.ts";
import {
  closeKeywordSources,
  keywordChannel,
  type KeywordClosed,
  type KeywordInit,
  openKeywordSources,
  serveKeywordJobs,
} from "./keyword_thread.ts";

lowerThreadPriority();

self.onmessage = (event: MessageEvent<KeywordInit>) => {
  const { storeDir, buffer } = event.data;
  const channel = keywordChannel(buffer);
  let sources: KeywordSources | undefined;
  const serve = () => {
    let closed = true;
    try {
      closed = serveKeywordJobs(channel, ({ query, fused }) => {
        sources ??= openKeywordSources(storeDir);
        return keywordKeysOf(sources, query, fused);
      });
    } finally {
      if (closed) {
        closeKeywordSources(sources);
        self.postMessage({ closed: true } satisfies KeywordClosed);
      } else setTimeout(serve, 0); // idle: back through the event loop (see serveKeywordJobs)
    }
  };
  serve();
};
