/**
 * The network half of {@link downloadFile}: a file's missing bytes fetched by parallel Range
 * requests (runs, planned by `_piece_plan.ts`) straight into the `.partial` file, retried with
 * backoff, each byte counted in the chunk state only once written, the hash follower advanced over
 * the finished prefix.
 */
import { writeSync } from "node:fs";
import { TabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { ChunkState } from "./_chunk_state.ts";
import type { HashFollower } from "./_hash_follower.ts";
import { planRuns, type Run } from "./_piece_plan.ts";
import { sleep } from "./_sleep.ts";
import type { HubClient, ResolvedFile } from "./hub_client.ts";
import { MAX_PIECE_ATTEMPTS, RETRY_BASE_MS, RETRY_MAX_MS, STALL_TIMEOUT_MS } from "./limits.ts";

/** Bytes one read of a response body may fill. */
const READ_BUFFER_BYTES = 1024 * 1024;

/** Progress is reported at most once per this many bytes (and at the end of each piece). */
const PROGRESS_STEP_BYTES = 256 * 1024;

/** An HTTP answer worth another try (5xx, 429, 408), or one that asks for a fresh URL. */
class RetryableError extends Error {
  constructor(message: string, readonly relocate = false) {
    super(message);
  }
}

function backoff(attempt: number): number {
  const base = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt);
  return base / 2 + Math.random() * base / 2;
}

/** What the pieces are written into and reported to. */
export interface PieceTarget {
  hub: HubClient;
  /** The file's `resolve` URL on the Hub (asked again when a CDN URL expires). */
  url: string;
  /** Where the Hub sent us, and whether it serves ranges. */
  located: ResolvedFile;
  /** The open `.partial` file and its path (for messages). */
  fd: number;
  partialPath: string;
  state: ChunkState;
  size: number;
  hasher: HashFollower;
  /** The usual Range request size (see {@link planRuns}). */
  runBytes: number;
  /** Aborted on cancel and on the first final failure. */
  signal: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
  log?: Logger;
}

/**
 * Fetches the bytes of one file that are not written yet. Mutates `target.state.done` (bytes
 * written per unit of `state.pieceBytes`) as bytes land.
 *
 * @example
 * ```ts
 * const pieces = new PieceDownload(target, resumedBytes);
 * await pieces.run(8);
 * console.log(pieces.fetchedBytes);
 * ```
 */
export class PieceDownload {
  /** Bytes fetched over the network by this download. */
  fetchedBytes = 0;
  #total: number;
  #reported: number;
  #frontier = 0;
  #relocating: Promise<ResolvedFile> | undefined;
  readonly #target: PieceTarget;
  /** Whether the first location served ranges: the chunk state was laid out for it. */
  readonly #ranges: boolean;

  constructor(target: PieceTarget, resumedBytes: number) {
    this.#target = target;
    this.#ranges = target.located.ranges;
    this.#total = resumedBytes;
    this.#reported = resumedBytes;
  }

  #start(i: number): number {
    return i * this.#target.state.pieceBytes;
  }

  /** The first byte of `run` not written yet (`run.to` once it is complete). */
  #resumeAt(run: Run): number {
    const { done, pieceBytes } = this.#target.state;
    for (let u = Math.floor(run.from / pieceBytes); this.#start(u) < run.to; u++) {
      if (done[u] < this.#length(u)) return Math.max(run.from, this.#start(u) + done[u]);
    }
    return run.to;
  }

  #length(i: number): number {
    const { size, state } = this.#target;
    return Math.min(size, (i + 1) * state.pieceBytes) - i * state.pieceBytes;
  }

  /** Tells the hasher how far the file is complete from its start. */
  #advanceFrontier(): void {
    const { done } = this.#target.state;
    while (this.#frontier < done.length && done[this.#frontier] === this.#length(this.#frontier)) this.#frontier++;
    this.#target.hasher.advance(
      this.#frontier < done.length ? this.#start(this.#frontier) + done[this.#frontier] : this.#target.size,
    );
  }

  #report(force: boolean): void {
    if (!force && this.#total - this.#reported < PROGRESS_STEP_BYTES) return;
    if (this.#total === this.#reported && !force) return;
    this.#reported = this.#total;
    this.#advanceFrontier();
    this.#target.onProgress?.(this.#total, this.#target.size);
  }

  /** Runs `connections` workers over the missing bytes; the first final failure stops them all. */
  async run(connections: number, abort: (reason: unknown) => void): Promise<void> {
    const { state, size, runBytes } = this.#target;
    const queue = planRuns(state, size, { connections, runBytes });
    this.#advanceFrontier();
    this.#target.onProgress?.(this.#total, this.#target.size);
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (next < queue.length) await this.#fetchPiece(queue[next++]);
    };
    await Promise.all(
      Array.from({ length: Math.min(connections, Math.max(1, queue.length)) }, () =>
        worker().catch((error) => {
          failure ??= error;
          abort(error);
        })),
    );
    if (failure !== undefined) throw failure;
  }

  /** Fetches `run` to its end, retrying what the network breaks. */
  async #fetchPiece(run: Run): Promise<void> {
    const { signal, log } = this.#target;
    let attempts = 0;
    while (this.#resumeAt(run) < run.to) {
      if (signal.aborted) throw signal.reason;
      const before = this.#resumeAt(run);
      const target = this.#target.located;
      try {
        await this.#streamPiece(before, run.to, target);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        // Our own failures (disk, checks) are final; anything from the network is worth a retry.
        if (error instanceof TabAgentError) throw error;
        const reached = this.#resumeAt(run);
        if (!this.#ranges && reached > run.from) {
          throw new TabAgentError(
            "upstream_failed",
            `The connection to ${target.url} broke and the server does not support resuming (no Range)`,
            {},
            { cause: error },
          );
        }
        attempts = reached > before ? 0 : attempts + 1;
        if (attempts >= MAX_PIECE_ATTEMPTS) {
          throw new TabAgentError(
            "upstream_failed",
            `Giving up on ${this.#target.url} after ${attempts} failed attempts: ${(error as Error).message}`,
            {},
            { cause: error },
          );
        }
        log?.debug("retrying piece", { path: this.#target.partialPath, from: reached, attempt: attempts });
        if (error instanceof RetryableError && error.relocate) await this.#relocate(target);
        if (attempts > 0) await sleep(backoff(attempts - 1), signal);
      }
    }
  }

  /** Asks the Hub for a fresh location once, however many pieces found the old one stale. */
  #relocate(stale: ResolvedFile): Promise<ResolvedFile> {
    if (this.#target.located !== stale) return Promise.resolve(this.#target.located);
    this.#relocating ??= this.#target.hub.locate(this.#target.url, this.#target.signal).then((fresh) => {
      this.#target.located = fresh;
      this.#relocating = undefined;
      return fresh;
    });
    return this.#relocating;
  }

  /** One Range request of bytes `from` to `end` (exclusive), with a stall watchdog. */
  async #streamPiece(from: number, end: number, target: ResolvedFile): Promise<void> {
    const to = end - 1;
    const request = new AbortController();
    const activity = { last: performance.now() };
    const watchdog = setInterval(() => {
      if (performance.now() - activity.last > STALL_TIMEOUT_MS) request.abort(new RetryableError("stalled"));
    }, Math.min(STALL_TIMEOUT_MS, 5_000));
    try {
      const response = await this.#request(target, from, to, AbortSignal.any([this.#target.signal, request.signal]));
      const reached = await this.#copyBody(response.body!, { from, to, activity });
      if (reached < end) throw new RetryableError("connection closed early");
    } finally {
      clearInterval(watchdog);
      // Bytes that arrived before a reset are written and kept: the hash checks them at the end.
      this.#advanceFrontier();
      this.#report(this.#total !== this.#reported);
    }
  }

  /** Sends the request and checks the answer is the range asked for. */
  async #request(target: ResolvedFile, from: number, to: number, signal: AbortSignal): Promise<Response> {
    const ranges = this.#ranges;
    const headers = new Headers({ "accept-encoding": "identity" });
    if (ranges) headers.set("range", `bytes=${from}-${to}`);
    const response = await this.#target.hub.fetch(target.url, { headers, signal });
    const refuse = async (error: Error): Promise<never> => {
      await response.body?.cancel();
      throw error;
    };
    const { status } = response;
    if (status >= 500 || status === 429 || status === 408) return refuse(new RetryableError(`HTTP ${status}`));
    if (!target.sameOrigin && (status === 403 || status === 410 || status === 401)) {
      return refuse(new RetryableError(`HTTP ${status} from the CDN: asking the Hub again`, true));
    }
    if (status !== (ranges ? 206 : 200)) {
      const message = ranges
        ? `Expected 206 for a Range request, got HTTP ${status}`
        : `HTTP ${status} for ${target.url}`;
      return refuse(new TabAgentError("upstream_failed", message, { upstream_status: status }));
    }
    if (ranges) {
      const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
      if (!match || Number(match[1]) !== from || Number(match[2]) !== to) {
        const got = response.headers.get("content-range");
        return refuse(new RetryableError(`Content-Range ${got} does not match ${from}-${to}`));
      }
    }
    if (!response.body) throw new RetryableError("empty body");
    return response;
  }

  /**
   * Writes the body into the file as it arrives. Each network chunk is written at once with a
   * positioned synchronous write: measured here, that is what keeps pace with curl (async writes or
   * batching into larger buffers cost a third to two thirds of the throughput), and a chunk counts
   * as done only once written, so the saved state never claims unwritten bytes. A BYOB reader fills
   * a large buffer per read (≈400 KB instead of ≈60 KB on loopback), so the per-chunk cost is paid
   * 6× less often.
   */
  async #copyBody(
    body: ReadableStream<Uint8Array>,
    range: { from: number; to: number; activity: { last: number } },
  ): Promise<number> {
    const reader = body.getReader({ mode: "byob" });
    let buffer = new Uint8Array(READ_BUFFER_BYTES);
    let position = range.from;
    try {
      while (true) {
        const { value, done: ended } = await reader.read(buffer);
        if (ended || !value) break;
        buffer = new Uint8Array(value.buffer);
        range.activity.last = performance.now();
        if (position + value.length > range.to + 1) throw new RetryableError("server sent more bytes than asked for");
        this.#write(value, position);
        this.#credit(position, value.length);
        position += value.length;
        this.#total += value.length;
        this.fetchedBytes += value.length;
        this.#report(position === range.to + 1);
      }
    } finally {
      reader.releaseLock();
    }
    return position;
  }

  /** Counts `length` bytes written at `position` in the units they fall in. */
  #credit(position: number, length: number): void {
    const { done, pieceBytes } = this.#target.state;
    while (length > 0) {
      const u = Math.floor(position / pieceBytes);
      const n = Math.min(length, this.#start(u) + this.#length(u) - position);
      done[u] += n;
      position += n;
      length -= n;
    }
  }

  #write(bytes: Uint8Array, position: number): void {
    try {
      let written = 0;
      while (written < bytes.length) {
        written += writeSync(this.#target.fd, bytes, written, bytes.length - written, position + written);
      }
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new TabAgentError(
        code === "ENOSPC" ? "insufficient_storage" : "internal",
        `Writing ${this.#target.partialPath} failed: ${(error as Error).message}`,
        {},
        { cause: error },
      );
    }
  }
}
