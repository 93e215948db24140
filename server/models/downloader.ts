/**
 * Our downloader for model bytes: N parallel HTTP Range requests per file into a `.partial` file,
 * chunk state saved beside it (resume after a kill or a cancel), retries with backoff on 5xx and
 * resets, the content hashed while it arrives and checked against the Hub's LFS oid (sha256) or git
 * blob id before an atomic rename, a free-space check first, and a cross-process lock per file.
 * @module
 */
import { closeSync, openSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { TabAgentError } from "../errors/mod.ts";
import { removeIfPresent, statIfExists } from "../fs/mod.ts";
import type { Logger } from "../log/mod.ts";
import { type ChunkState, doneBytes, freshState, loadState, saveState } from "./_chunk_state.ts";
import type { Digests } from "./_hash_core.ts";
import { followHash, hashFile, warmHashThread } from "./_hash_follower.ts";
import { chooseRunBytes, chooseUnitBytes } from "./_piece_plan.ts";
import { PieceDownload } from "./_pieces.ts";
import { acquireFileLock } from "./file_lock.ts";
import type { HubClient, ResolvedFile } from "./hub_client.ts";
import {
  DEFAULT_CONNECTIONS,
  DISK_RESERVE_BYTES,
  HASH_WORKER_MIN_BYTES,
  MAX_CONNECTIONS,
  STATE_SAVE_INTERVAL_MS,
} from "./limits.ts";

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
  /**
   * Bytes per Range request, and the unit resumable progress is counted in; by default sized from
   * the file and `connections` (see `_piece_plan.ts`: the first and last requests are smaller).
   */
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
  const { dest } = options;
  const signal = options.signal ?? new AbortController().signal;
  if (options.expected.size >= HASH_WORKER_MIN_BYTES) warmHashThread(); // starts while we lock and locate
  await Deno.mkdir(parentOf(dest), { recursive: true });
  if (signal.aborted) throw new TabAgentError("cancelled", `Download of ${dest} cancelled`);
  await using _lock = await acquireFileLock(`${dest}.lock`, { signal, onWait: options.onWait });
  // Someone (another process, an earlier pull) may have finished the file while we waited.
  const present = await presentAndVerified(dest, options.expected);
  if (present) {
    options.onProgress?.(present.size, present.size);
    return { ...present, fetchedBytes: 0, resumedBytes: 0, alreadyPresent: true };
  }
  const located = await options.hub.locate(options.url, signal);
  const expected = checkedExpectation(options, located);
  const start = await startState(options, located, expected);
  const { resumedBytes } = start;
  const { fetchedBytes, digests } = await fetchAndHash({ options, signal, located, expected, ...start });
  const partialPath = `${dest}.partial`;
  if (!matches(digests, expected)) {
    await removeIfPresent(partialPath);
    await removeIfPresent(`${partialPath}.json`);
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
  await removeIfPresent(`${partialPath}.json`);
  return { path: dest, size: expected.size, ...digests, fetchedBytes, resumedBytes, alreadyPresent: false };
}

/** The file at `dest` when it already is what is expected (size and checksum), else null. */
async function presentAndVerified(
  dest: string,
  expected: ExpectedFile,
): Promise<{ path: string; size: number } & Digests | null> {
  const present = await statIfExists(dest);
  if (!present || present.size !== expected.size || !(expected.sha256 || expected.gitSha1)) return null;
  const digests = await hashFile(dest, present.size, !expected.sha256);
  return matches(digests, expected) ? { path: dest, size: present.size, ...digests } : null;
}

/** What the file must be, from the file list and the Hub's ETag, which must agree. */
function checkedExpectation(options: DownloadOptions, located: ResolvedFile): ExpectedFile {
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
  return expected;
}

/** The chunk state to continue from (a resumable partial file's, or a fresh one), after a space check. */
async function startState(
  options: DownloadOptions,
  located: ResolvedFile,
  expected: ExpectedFile,
): Promise<{ state: ChunkState; resumedBytes: number; resumed: boolean; runBytes: number }> {
  const partialPath = `${options.dest}.partial`;
  const { size } = expected;
  const connections = connectionsFor(options);
  const identity = `${expected.sha256 ?? ""}:${expected.gitSha1 ?? ""}`;
  const loaded = located.ranges && await statIfExists(partialPath)
    ? await loadState(`${partialPath}.json`, size, identity)
    : null;
  // Without Range support the file is one request, counted as one unit.
  const runBytes = located.ranges ? (options.pieceBytes ?? chooseRunBytes(size, connections)) : size || 1;
  const unitBytes = located.ranges ? (options.pieceBytes ?? chooseUnitBytes(size, runBytes, connections)) : runBytes;
  const state = loaded ?? freshState(size, identity, unitBytes);
  const resumedBytes = doneBytes(state);
  await checkDiskSpace(parentOf(options.dest), size - resumedBytes);
  if (loaded) options.log?.info("resuming download", { path: options.dest, bytes: resumedBytes, size });
  return { state, resumedBytes, resumed: loaded !== null, runBytes };
}

function connectionsFor(options: DownloadOptions): number {
  return Math.max(1, Math.min(MAX_CONNECTIONS, options.connections ?? DEFAULT_CONNECTIONS));
}

/**
 * Fetches the missing pieces into `<dest>.partial` while hashing it, saving the chunk state now and
 * then and on failure. Every resource it opens is closed by one `AsyncDisposableStack`, on every path.
 */
async function fetchAndHash(run: {
  options: DownloadOptions;
  signal: AbortSignal;
  located: ResolvedFile;
  expected: ExpectedFile;
  state: ChunkState;
  resumedBytes: number;
  resumed: boolean;
  runBytes: number;
}): Promise<{ fetchedBytes: number; digests: Digests }> {
  const { options, state, expected } = run;
  const { dest, log } = options;
  const partialPath = `${dest}.partial`;
  const statePath = `${partialPath}.json`;
  await using cleanup = new AsyncDisposableStack();
  const fd = openSync(partialPath, run.resumed ? "r+" : "w");
  cleanup.defer(() => closeSync(fd));
  const hasher = followHash(partialPath, expected.size, !expected.sha256);
  cleanup.defer(() => hasher.close());
  let saving = Promise.resolve();
  const persist = () => {
    const snapshot = { ...state, done: [...state.done] };
    saving = saving.then(() => saveState(statePath, snapshot));
    return saving;
  };
  const saver = setInterval(
    () => persist().catch((error) => log?.warn("saving chunk state failed", { error })),
    STATE_SAVE_INTERVAL_MS,
  );
  cleanup.defer(() => clearInterval(saver));
  const internal = new AbortController();
  const onAbort = () => internal.abort(new TabAgentError("cancelled", `Download of ${dest} cancelled`));
  run.signal.addEventListener("abort", onAbort, { once: true });
  cleanup.defer(() => run.signal.removeEventListener("abort", onAbort));

  const pieces = new PieceDownload({
    hub: options.hub,
    url: options.url,
    located: run.located,
    fd,
    partialPath,
    state,
    size: expected.size,
    hasher,
    runBytes: run.runBytes,
    signal: internal.signal,
    onProgress: options.onProgress,
    log,
  }, run.resumedBytes);
  const began = performance.now();
  try {
    await pieces.run(connectionsFor(options), (reason) => internal.abort(reason));
  } catch (error) {
    clearInterval(saver);
    await persist();
    if (error instanceof TabAgentError) throw error;
    throw new TabAgentError("upstream_failed", `Download of ${options.url} failed: ${(error as Error).message}`, {}, {
      cause: error,
    });
  }
  clearInterval(saver);
  await saving.catch(() => {}); // the state is about to be removed either way
  const fetched = performance.now();
  const digests = await hasher.finish();
  // How long the last piece took to hash after it landed: the time hashing adds to a download.
  log?.debug("file fetched and hashed", {
    path: dest,
    fetch_ms: Math.round(fetched - began),
    hash_tail_ms: Math.round(performance.now() - fetched),
  });
  return { fetchedBytes: pieces.fetchedBytes, digests };
}
