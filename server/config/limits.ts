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
