/** Named limits and defaults of the models module. Changing one is a product decision: say why. */

/** Parallel HTTP Range requests per file by default. */
export const DEFAULT_CONNECTIONS = 8;
/** Most parallel connections a caller may ask for per file. */
export const MAX_CONNECTIONS = 32;
/** Largest piece a single Range request asks for (bytes); smaller pieces keep the hash close behind. */
export const MAX_PIECE_BYTES = 16 * 1024 * 1024;
/** Smallest piece (bytes): below this, request overhead outweighs parallelism. */
export const MIN_PIECE_BYTES = 256 * 1024;
/** Attempts per piece without any progress before the download fails. */
export const MAX_PIECE_ATTEMPTS = 6;
/** First retry delay (ms); doubles per attempt, with jitter. */
export const RETRY_BASE_MS = 200;
/** Longest retry delay (ms). */
export const RETRY_MAX_MS = 8_000;
/** How often chunk state is saved beside the `.partial` file (ms). */
export const STATE_SAVE_INTERVAL_MS = 500;
/** Free space kept beyond a download's remaining bytes (bytes). */
export const DISK_RESERVE_BYTES = 64 * 1024 * 1024;
/** Files at least this large are hashed on a worker thread while they download. */
export const HASH_WORKER_MIN_BYTES = 16 * 1024 * 1024;
/** Redirects followed for one request. */
export const MAX_REDIRECTS = 5;
/** Longest file path inside a repository. */
export const MAX_MODEL_FILE_PATH_LENGTH = 512;
/** Most files one pull may fetch. */
export const MAX_FILES_PER_PULL = 2_000;
/** Pull jobs kept (finished ones are forgotten oldest first). */
export const MAX_PULL_JOBS = 64;
/** How often a pull's progress is sent on its SSE stream (ms). */
export const PROGRESS_INTERVAL_MS = 250;
/** Time to wait for a Hub metadata request (ms). */
export const HUB_REQUEST_TIMEOUT_MS = 30_000;
/** Time without a single byte on a piece before it is retried (ms). */
export const STALL_TIMEOUT_MS = 30_000;
