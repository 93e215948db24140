/** Named limits that every boundary enforces. Changing one is a product decision: say why. */

/** Largest HTTP request body accepted by default (bytes). Chats carry page text and images. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Time a non-streaming HTTP request may take before it is answered with 504 (ms). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
/** Time the server waits for components to stop on SIGINT/SIGTERM before it exits anyway (ms). */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** Longest accepted `X-Request-Id`; longer ones are replaced rather than echoed. */
export const MAX_REQUEST_ID_LENGTH = 128;
/** Chrome's limit for one message from the host to the extension (bytes). */
export const NATIVE_MAX_OUTGOING_BYTES = 1024 * 1024;
/** Chrome's limit for one message from the extension to the host (bytes). */
export const NATIVE_MAX_INCOMING_BYTES = 64 * 1024 * 1024;
/** Most messages one chat request may carry. */
export const CHAT_MAX_MESSAGES = 2048;
/** Most stop sequences per request (OpenAI's limit). */
export const CHAT_MAX_STOP_SEQUENCES = 4;
/** Most tools one chat request may offer. */
export const CHAT_MAX_TOOLS = 128;
/** Most inputs one embeddings request may carry (OpenAI's limit). */
export const EMBEDDINGS_MAX_INPUTS = 2048;

// Memory (the MIA stores). Sized for chats that carry page text and images.
/** Largest content of one stored message, text and parts together (bytes); more is refused with 413. */
export const MEMORY_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Most messages one append may carry; they are written in one transaction. */
export const MEMORY_MAX_MESSAGES_PER_APPEND = 1_000;
/** Largest `metadata`, `arguments`, `result` or `attributes` object stored with an item (bytes, as JSON). */
export const MEMORY_MAX_JSON_BYTES = 1024 * 1024;
/** Longest title, name, predicate, tool name or model id (characters). */
export const MEMORY_MAX_NAME_LENGTH = 1_000;
/** Longest fact, summary or episode text (characters). */
export const MEMORY_MAX_TEXT_LENGTH = 256 * 1024;
/** Page size when a list call gives none. */
export const MEMORY_DEFAULT_PAGE_SIZE = 50;
/** Largest page a list call may ask for. */
export const MEMORY_MAX_PAGE_SIZE = 500;
/** Most hits one search may return. */
export const MEMORY_MAX_SEARCH_LIMIT = 100;
/** Longest search query (characters) and most words in it. */
export const MEMORY_MAX_QUERY_LENGTH = 1_000;
/** Most words a search query may hold; more would make FTS5 intersect long posting lists for nothing. */
export const MEMORY_MAX_QUERY_TERMS = 32;
/** Time one search may run in its worker before it is cancelled and answered with 504 (ms). */
export const MEMORY_SEARCH_TIMEOUT_MS = 10_000;
/** How long a search waits for its worker to start before failing; the query's own deadline starts after. */
export const MEMORY_SEARCH_WORKER_STARTUP_MS = 120_000;
/** Largest embedding vector accepted (dimensions). */
export const MEMORY_MAX_EMBEDDING_DIMENSIONS = 8_192;
/** Largest JSONL document one import call accepts (bytes). */
export const MEMORY_MAX_IMPORT_BYTES = 64 * 1024 * 1024;
/** Records one import writes per transaction: other writers get the stores between batches. */
export const MEMORY_IMPORT_BATCH = 1_000;
/** Routes whose bodies may exceed `--max-body-bytes`, with their own limit (bytes), by exact path. */
export const ROUTE_BODY_LIMITS: ReadonlyMap<string, number> = new Map([
  ["/v1/memory/import", MEMORY_MAX_IMPORT_BYTES],
]);
/** How often the outbox worker looks for work when nothing woke it (ms). */
export const MEMORY_OUTBOX_INTERVAL_MS = 250;
/** Most outbox entries or tailed rows the worker applies in one step, so one step stays short. */
export const MEMORY_OUTBOX_BATCH = 500;
/**
 * Pause between outbox steps while a backlog drains (ms). Steps run on the event loop: back to back
 * they held up foreground requests (appends, search replies) behind derived-store work; with this
 * pause a step (a few ms for 500 rows) takes at most about a third of the loop, and a backlog still
 * drains at tens of thousands of rows a second.
 */
export const MEMORY_OUTBOX_BUSY_PAUSE_MS = 10;
/** How often the checkpoint worker copies each store's WAL into its file while writes keep coming (ms). */
export const MEMORY_CHECKPOINT_BUSY_MS = 10;
/** How often the checkpoint worker looks at the WALs while nothing was written since its last look (ms). */
export const MEMORY_CHECKPOINT_IDLE_MS = 100;

/**
 * V8 flags the server runs with (every launcher passes them: deno.json tasks, the install shim, the
 * native-messaging launcher, `deno compile`, the test starter). A small young generation keeps each
 * scavenge short: under 8 concurrent searches the default let single scavenges reach ~10 ms, which
 * showed as /v1/health p99; with 4 MB they stay under ~4 ms for more, cheaper collections.
 * Measured again under 8 searching clients on 2 shared cores (the event loop allocates ~25-35 KB
 * a search): 4 MB gave 15-30 scavenges/s of 0.6-0.8 ms (p90 ~1 ms), 1-2% of the event loop's
 * time; 16 MB gave 5-7/s of 0.4-1.6 ms (p90 2-3 ms), about 0.5%. Fewer pauses but longer ones:
 * compare on a quiet machine with TABAGENT_TEST_V8_FLAGS before changing it (both http and memory
 * benches honour it).
 */
export const SERVER_V8_FLAGS = "--max-semi-space-size=4";

// WebRTC (tab video).
/** Most WebRTC sessions open at once: each is a tab streaming video into a vision model. */
export const WEBRTC_MAX_SESSIONS = 8;
/** A WebRTC session with no frame, ping or candidate from its client for this long is closed (ms). */
export const WEBRTC_IDLE_TIMEOUT_MS = 30_000;
/** Largest SDP offer accepted (bytes); a data-channel offer with candidates is ~2 KB. */
export const WEBRTC_MAX_SDP_BYTES = 64 * 1024;
/** Most ICE candidates one trickle request may carry. */
export const WEBRTC_MAX_CANDIDATES_PER_POST = 64;

// llama.cpp.
/** Most llama.cpp threads `--llama-threads` accepts: more than any CPU this runs on has cores. */
export const MAX_LLAMA_THREADS = 256;
