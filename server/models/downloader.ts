/**
 * Our downloader for model bytes: N parallel HTTP Range requests per file into a `.partial` file,
 * chunk state saved beside it (resume after a kill or a cancel), retries with backoff on 5xx and
 * resets, the content hashed while it arrives and checked against the Hub's LFS oid (sha256) or git
 * blob id before an atomic rename, a free-space check first, and a cross-process lock per file.
 * @module
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { TabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { type ChunkState, doneBytes, freshState, loadState, saveState } from "./_chunk_state.ts";
import type { Digests } from "./_hash_core.ts";
import { followHash, type HashFollower } from "./_hash_follower.ts";
import { acquireFileLock } from "./file_lock.ts";
import type { HubClient, ResolvedFile } from "./hub_client.ts";
import {
  DEFAULT_CONNECTIONS,
  DISK_RESERVE_BYTES,
  MAX_CONNECTIONS,
  MAX_PIECE_ATTEMPTS,
  MAX_PIECE_BYTES,
  MIN_PIECE_BYTES,
  RETRY_BASE_MS,
  RETRY_MAX_MS,
  STALL_TIMEOUT_MS,
  STATE_SAVE_INTERVAL_MS,
} from "./limits.ts";

/** Bytes one read of a response body may fill. */
const READ_BUFFER_BYTES = 1024 * 1024;

/** Progress is reported at most once per this many bytes (and at the end of each piece). */
const PROGRESS_STEP_BYTES = 256 * 1024;

/** What a file must turn out to be. */
export interface ExpectedFile {
  size: number;
  /** sha256 of the content (the LFS oid). */
  sha256?: string;
  /** git blob id (for small non-LFS files). */
  gitSha1?: string;
}

/** Options for {@link downloadFile}. */
export interface DownloadOptions {
  hub: HubClient;
  /** The file's `resolve` URL on the Hub. */
  url: string;
  /** Final path; `<dest>.partial`, `<dest>.partial.json` and `<dest>.lock` live beside it. */
  dest: string;
  expected: ExpectedFile;
  /** Parallel Range requests (default 8). */
  connections?: number;
  /** Bytes per Range request; by default sized from the file and `connections`. */
  pieceBytes?: number;
  signal?: AbortSignal;
  /** Bytes of the file on disk so far (resumed ones included), after each write. */
  onProgress?: (bytes: number, total: number) => void;
  /** Called once if another download of the same file holds the lock. */
  onWait?: () => void;
  log?: Logger;
}

/** What a finished download did. */
export interface DownloadResult {
  path: string;
  size: number;
  sha256: string;
  /** Only for files checked by their git blob id (no LFS sha256). */
  gitSha1?: string;
  /** Bytes fetched over the network by this call. */
  fetchedBytes: number;
  /** Bytes that an earlier, interrupted download had already written. */
  resumedBytes: number;
  /** The file was already complete and verified (e.g. another process fetched it meanwhile). */
  alreadyPresent: boolean;
}

/** An HTTP answer worth another try (5xx, 429, 408), or one that asks for a fresh URL. */
class RetryableError extends Error {
  constructor(message: string, readonly relocate = false) {
    super(message);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function backoff(attempt: number): number {
  const base = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt);
  return base / 2 + Math.random() * base / 2;
}

/** The piece size for a file: about four pieces per connection, within the limits. */
export function choosePieceBytes(size: number, connections: number): number {
  const target = Math.ceil(size / (connections * 4));
  const clamped = Math.min(MAX_PIECE_BYTES, Math.max(MIN_PIECE_BYTES, target));
  return Math.ceil(clamped / 65536) * 65536;
}

async function exists(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function parentOf(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut > 0 ? path.slice(0, cut) : ".";
}

/** Throws `insufficient_storage` unless `needed` bytes (plus a reserve) are free in `dir`. */
export async function checkDiskSpace(dir: string, needed: number): Promise<void> {
  const info = await statfs(dir);
  const free = Number(info.bavail) * Number(info.bsize);
  if (free < needed + DISK_RESERVE_BYTES) {
    throw new TabAgentError(
      "insufficient_storage",
      `Not enough free disk space in ${dir}: ${needed} bytes needed (plus ${DISK_RESERVE_BYTES} spare), ${free} free`,
      { needed, free, dir },
    );
  }
}

async function hashExisting(path: string, size: number, gitSha1: boolean): Promise<Digests> {
  const follower = followHash(path, size, gitSha1);
  try {
    return await follower.finish();
  } finally {
    follower.close();
  }
}

function matches(digests: Digests, expected: { sha256?: string; gitSha1?: string }): boolean {
  if (expected.sha256) return digests.sha256 === expected.sha256;
  if (expected.gitSha1) return digests.gitSha1 === expected.gitSha1;
  return false;
}

/**
 * Downloads one file. On success the verified file is at `dest`; on failure or cancel the
 * `.partial` file and its chunk state stay, and a later call resumes from them (unless the bytes
 * failed verification: those are deleted, since no one can tell which of them are wrong).
 *
 * @example
 * ```ts
 * const result = await downloadFile({
 *   hub, url: hub.resolveUrl("Qwen/Qwen2.5-0.5B-Instruct-GGUF", commit, "qwen2.5-0.5b-instruct-q4_k_m.gguf"),
 *   dest: "/models/Qwen--Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
 *   expected: { size, sha256 },
 * });
 * ```
 */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const { hub, dest, log } = options;
  const signal = options.signal ?? new AbortController().signal;
  const partialPath = `${dest}.partial`;
  const statePath = `${partialPath}.json`;
  await Deno.mkdir(parentOf(dest), { recursive: true });
  if (signal.aborted) throw new TabAgentError("cancelled", `Download of ${dest} cancelled`);
  await using _lock = await acquireFileLock(`${dest}.lock`, { signal, onWait: options.onWait });

  // Someone (another process, an earlier pull) may have finished the file while we waited.
  const present = await exists(dest);
  if (present && present.size === options.expected.size && (options.expected.sha256 || options.expected.gitSha1)) {
    const digests = await hashExisting(dest, present.size, !options.expected.sha256);
    if (matches(digests, options.expected)) {
      options.onProgress?.(present.size, present.size);
      return { path: dest, size: present.size, ...digests, fetchedBytes: 0, resumedBytes: 0, alreadyPresent: true };
    }
  }

  let located = await hub.locate(options.url, signal);
  const etagSha256 = located.etag && /^[0-9a-f]{64}$/.test(located.etag) ? located.etag : undefined;
  const etagGit = located.etag && /^[0-9a-f]{40}$/.test(located.etag) ? located.etag : undefined;
  const expected = {
    size: options.expected.size,
    sha256: options.expected.sha256 ?? etagSha256,
    gitSha1: options.expected.gitSha1 ?? (etagSha256 ? undefined : etagGit),
  };
  if (options.expected.sha256 && etagSha256 && options.expected.sha256 !== etagSha256) {
    throw new TabAgentError(
      "upstream_failed",
      `The Hub's ETag for ${options.url} (${etagSha256}) contradicts its file list (${options.expected.sha256})`,
    );
  }
  if (located.size !== expected.size) {
    throw new TabAgentError(
      "upstream_failed",
      `The Hub says ${options.url} has ${located.size} bytes, its file list said ${expected.size}`,
    );
  }
  if (!expected.sha256 && !expected.gitSha1) {
    throw new TabAgentError("upstream_failed", `No checksum for ${options.url}: the Hub sent no LFS oid or ETag`);
  }
  const size = expected.size;
  const connections = Math.max(1, Math.min(MAX_CONNECTIONS, options.connections ?? DEFAULT_CONNECTIONS));
  const ranges = located.ranges;
  const identity = `${expected.sha256 ?? ""}:${expected.gitSha1 ?? ""}`;
  let state: ChunkState | null = ranges && await exists(partialPath)
    ? await loadState(statePath, size, identity)
    : null;
  const resumed = state !== null;
  state ??= freshState(
    size,
    identity,
    ranges ? (options.pieceBytes ?? choosePieceBytes(size, connections)) : size || 1,
  );
  const resumedBytes = doneBytes(state);
  await checkDiskSpace(parentOf(dest), size - resumedBytes);
  if (resumed) log?.info("resuming download", { path: dest, bytes: resumedBytes, size });

  const fd = openSync(partialPath, resumed ? "r+" : "w");
  const hasher: HashFollower = followHash(partialPath, size, !expected.sha256);
  const pieceBytes = state.pieceBytes;
  const done = state.done;
  const pieceStart = (i: number) => i * pieceBytes;
  const pieceLength = (i: number) => Math.min(size, (i + 1) * pieceBytes) - i * pieceBytes;
  let total = resumedBytes;
  let reported = resumedBytes;
  let fetchedBytes = 0;
  let frontier = 0;
  const advanceFrontier = () => {
    while (frontier < done.length && done[frontier] === pieceLength(frontier)) frontier++;
    const prefix = frontier < done.length ? pieceStart(frontier) + done[frontier] : size;
    hasher.advance(prefix);
  };

  let saving = Promise.resolve();
  const persist = () => {
    const snapshot = { ...state, done: [...done] };
    saving = saving.then(() => saveState(statePath, snapshot));
    return saving;
  };
  const internal = new AbortController();
  const onAbort = () => internal.abort(new TabAgentError("cancelled", `Download of ${dest} cancelled`));
  signal.addEventListener("abort", onAbort, { once: true });
  const saver = setInterval(
    () => persist().catch((error) => log?.warn("saving chunk state failed", { error })),
    STATE_SAVE_INTERVAL_MS,
  );

  let relocating: Promise<ResolvedFile> | undefined;
  const relocate = (stale: ResolvedFile) => {
    if (located !== stale) return Promise.resolve(located);
    relocating ??= hub.locate(options.url, internal.signal).then((fresh) => {
      located = fresh;
      relocating = undefined;
      return fresh;
    });
    return relocating;
  };

  // Streams one Range request of piece `i` into the file, counting bytes only once written.
  // Streams one Range request of piece `i` into the file. Each network chunk is written at once
  // with a positioned synchronous write: measured here, that is what keeps pace with curl (async
  // writes or batching into larger buffers cost a third to two thirds of the throughput), and a
  // chunk counts as done only once written, so the saved state never claims unwritten bytes.
  const streamPiece = async (i: number) => {
    const target = located;
    const from = pieceStart(i) + done[i];
    const to = pieceStart(i) + pieceLength(i) - 1;
    const request = new AbortController();
    const requestSignal = AbortSignal.any([internal.signal, request.signal]);
    let lastActivity = performance.now();
    const watchdog = setInterval(() => {
      if (performance.now() - lastActivity > STALL_TIMEOUT_MS) request.abort(new RetryableError("stalled"));
    }, Math.min(STALL_TIMEOUT_MS, 5_000));
    let position = from;
    try {
      const headers = new Headers({ "accept-encoding": "identity" });
      if (ranges) headers.set("range", `bytes=${from}-${to}`);
      const response = await hub.fetch(target.url, { headers, signal: requestSignal });
      if (response.status >= 500 || response.status === 429 || response.status === 408) {
        await response.body?.cancel();
        throw new RetryableError(`HTTP ${response.status}`);
      }
      if (!target.sameOrigin && (response.status === 403 || response.status === 410 || response.status === 401)) {
        await response.body?.cancel();
        throw new RetryableError(`HTTP ${response.status} from the CDN: asking the Hub again`, true);
      }
      if (ranges && response.status !== 206) {
        await response.body?.cancel();
        throw new TabAgentError("upstream_failed", `Expected 206 for a Range request, got HTTP ${response.status}`, {
          upstream_status: response.status,
        });
      }
      if (!ranges && response.status !== 200) {
        await response.body?.cancel();
        throw new TabAgentError("upstream_failed", `HTTP ${response.status} for ${target.url}`, {
          upstream_status: response.status,
        });
      }
      if (ranges) {
        const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
        if (!match || Number(match[1]) !== from || Number(match[2]) !== to) {
          await response.body?.cancel();
          throw new RetryableError(
            `Content-Range ${response.headers.get("content-range")} does not match ${from}-${to}`,
          );
        }
      }
      if (!response.body) throw new RetryableError("empty body");
      // A BYOB reader fills a large buffer per read (≈400 KB instead of ≈60 KB on loopback), so the
      // per-chunk cost of the stream, the write and the bookkeeping is paid 6× less often.
      const reader = response.body.getReader({ mode: "byob" });
      let buffer = new Uint8Array(READ_BUFFER_BYTES);
      try {
        while (true) {
          const { value, done: ended } = await reader.read(buffer);
          if (ended || !value) break;
          buffer = new Uint8Array(value.buffer);
          lastActivity = performance.now();
          if (position + value.length > to + 1) throw new RetryableError("server sent more bytes than asked for");
          let written = 0;
          try {
            while (written < value.length) {
              written += writeSync(fd, value, written, value.length - written, position + written);
            }
          } catch (error) {
            const code = (error as { code?: string }).code;
            throw new TabAgentError(
              code === "ENOSPC" ? "insufficient_storage" : "internal",
              `Writing ${partialPath} failed: ${(error as Error).message}`,
              {},
              { cause: error },
            );
          }
          position += value.length;
          done[i] += value.length;
          total += value.length;
          fetchedBytes += value.length;
          if (total - reported >= PROGRESS_STEP_BYTES || done[i] === pieceLength(i)) {
            reported = total;
            advanceFrontier();
            options.onProgress?.(total, size);
          }
        }
      } finally {
        reader.releaseLock();
      }
      if (done[i] < pieceLength(i)) throw new RetryableError("connection closed early");
    } finally {
      clearInterval(watchdog);
      // Bytes that arrived before a reset are written and kept: the hash checks them at the end.
      advanceFrontier();
      if (total !== reported) {
        reported = total;
        options.onProgress?.(total, size);
      }
    }
  };

  const fetchPiece = async (i: number) => {
    let attempts = 0;
    while (done[i] < pieceLength(i)) {
      if (internal.signal.aborted) throw internal.signal.reason;
      const before = done[i];
      const target = located;
      try {
        await streamPiece(i);
      } catch (error) {
        if (internal.signal.aborted) throw internal.signal.reason;
        // Our own failures (disk, checks) are final; anything from the network is worth a retry.
        if (error instanceof TabAgentError) throw error;
        if (!ranges && done[i] > 0) {
          throw new TabAgentError(
            "upstream_failed",
            `The connection to ${target.url} broke and the server does not support resuming (no Range)`,
            {},
            { cause: error },
          );
        }
        attempts = done[i] > before ? 0 : attempts + 1;
        if (attempts >= MAX_PIECE_ATTEMPTS) {
          throw new TabAgentError(
            "upstream_failed",
            `Giving up on ${options.url} after ${attempts} failed attempts: ${(error as Error).message}`,
            {},
            { cause: error },
          );
        }
        log?.debug("retrying piece", { path: dest, piece: i, attempt: attempts, reason: (error as Error).message });
        if (error instanceof RetryableError && error.relocate) await relocate(target);
        if (attempts > 0) await sleep(backoff(attempts - 1), internal.signal);
      }
    }
  };

  const queue: number[] = [];
  for (let i = 0; i < done.length; i++) if (done[i] < pieceLength(i)) queue.push(i);
  let next = 0;
  const worker = async () => {
    while (next < queue.length) {
      const i = queue[next++];
      await fetchPiece(i);
    }
  };

  let failure: unknown;
  try {
    advanceFrontier();
    options.onProgress?.(total, size);
    const workers = Array.from(
      { length: Math.min(connections, Math.max(1, queue.length)) },
      () =>
        worker().catch((error) => {
          failure ??= error;
          internal.abort(error);
        }),
    );
    await Promise.all(workers);
    if (failure !== undefined) throw failure;
  } catch (error) {
    clearInterval(saver);
    signal.removeEventListener("abort", onAbort);
    hasher.close();
    closeSync(fd);
    await persist();
    if (error instanceof TabAgentError) throw error;
    throw new TabAgentError("upstream_failed", `Download of ${options.url} failed: ${(error as Error).message}`, {}, {
      cause: error,
    });
  }
  clearInterval(saver);
  signal.removeEventListener("abort", onAbort);
  closeSync(fd);
  await saving.catch(() => {}); // the state is about to be removed either way
  let digests: Digests;
  try {
    digests = await hasher.finish();
  } finally {
    hasher.close();
  }
  if (!matches(digests, expected)) {
    await removeIfPresent(partialPath);
    await removeIfPresent(statePath);
    const algorithm = expected.sha256 ? "sha256" : "git-sha1";
    throw new TabAgentError(
      "checksum_mismatch",
      `Downloaded bytes of ${options.url} do not match the Hub's ${algorithm}; the partial file was deleted, pull again`,
      {
        algorithm,
        expected: expected.sha256 ?? expected.gitSha1,
        actual: expected.sha256 ? digests.sha256 : digests.gitSha1,
      },
    );
  }
  // No fsync before the rename, as curl and huggingface_hub: forcing 1 GiB to disk doubles the time
  // here. A power cut right after can leave a damaged file; `sha256` in the manifest finds it.
  await Deno.rename(partialPath, dest);
  await removeIfPresent(statePath);
  return { path: dest, size, ...digests, fetchedBytes, resumedBytes, alreadyPresent: false };
}
