/** Follows a download's contiguous prefix with a hash, on a warm worker thread for large files. @module */
import { Worker } from "node:worker_threads";
import { type Digests, PrefixHasher } from "./_hash_core.ts";
import type { HashReply, HashRequest } from "./_hash_worker.ts";
import { HASH_WORKER_MIN_BYTES } from "./limits.ts";

/** Hashes a file as it is written front to back. */
export interface HashFollower {
  /** Bytes before `to` are final on disk. */
  advance(to: number): void;
  /** Hashes the rest and returns the digests; the whole file must be on disk. */
  finish(): Promise<Digests>;
  /** Stops without a result (cancel, failure). */
  close(): void;
}

/**
 * The prefix must grow by this much before the worker hears of it. Each message wakes the worker
 * for one read and hash; measured on 1 GiB over loopback with 8 connections, 8 MiB steps instead
 * of 1 MiB cut the downloading process's CPU from 1.41-1.44 s to 1.35-1.38 s with the same
 * throughput (the whole tail is hashed on `finish` either way).
 */
const ADVANCE_STEP_BYTES = 8 * 1024 * 1024;

/**
 * Idle hash threads kept for the next download. Starting one costs ≈35 ms of CPU (an isolate and
 * the node:crypto layer), measured here: 12% of a 256 MiB download on loopback. Idle threads are
 * unref'd, so they never keep the process alive; each holds ≈25 MB, so one is kept, and only for
 * {@link IDLE_THREAD_MS} after its last file (the files of a pull follow one another).
 */
const MAX_IDLE_THREADS = 1;
const IDLE_THREAD_MS = 30_000;

/** One worker thread, lent to one follower at a time. */
class HashThread {
  readonly #worker: Worker;
  #alive = true;
  /** Ends the thread once it has idled too long. */
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** The job whose answer is awaited, and how to settle it. */
  #waiting: { job: number; settle: (reply: HashReply) => void } | undefined;

  constructor() {
    this.#worker = new Worker(new URL("./_hash_worker.ts", import.meta.url));
    this.#worker.on("message", (reply: HashReply) => {
      if (this.#waiting?.job === reply.job) this.#waiting.settle(reply);
    });
    this.#worker.on("error", (error: Error) => this.#die(`hash worker crashed: ${error.message}`));
    this.#worker.on("exit", (code: number) => this.#die(`hash worker exited with code ${code}`));
  }

  get alive(): boolean {
    return this.#alive;
  }

  #die(message: string): void {
    this.#alive = false;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.settle({ type: "error", job: waiting.job, message });
  }

  send(message: HashRequest): void {
    if (this.#alive) this.#worker.postMessage(message);
  }

  /** Settles `settle` with `job`'s answer (or its failure); the thread holds the process meanwhile. */
  expect(job: number, settle: (reply: HashReply) => void): void {
    if (!this.#alive) return settle({ type: "error", job, message: "hash worker is gone" });
    this.#waiting = { job, settle };
  }

  /** Keeps the process alive while a download uses the thread, not while it idles. */
  hold(held: boolean): void {
    if (!this.#alive) return;
    if (held) this.#worker.ref();
    else this.#worker.unref();
  }

  terminate(): void {
    this.#alive = false;
    this.#waiting = undefined;
    void this.#worker.terminate();
  }
}

const idleThreads: HashThread[] = [];
let nextJob = 1;
let threadsStarted = 0;

/** How many hash threads this process has started, and how many wait idle (for tests and debugging). */
export function hashThreadStats(): { started: number; idle: number } {
  return { started: threadsStarted, idle: idleThreads.filter((thread) => thread.alive).length };
}

function takeThread(): HashThread {
  let thread = idleThreads.pop();
  while (thread && !thread.alive) thread = idleThreads.pop();
  clearTimeout(thread?.idleTimer);
  if (!thread) {
    thread = new HashThread();
    threadsStarted++;
  }
  thread.hold(true);
  return thread;
}

function returnThread(thread: HashThread): void {
  thread.hold(false);
  if (!thread.alive || idleThreads.length >= MAX_IDLE_THREADS) return thread.terminate();
  idleThreads.push(thread);
  const timer = setTimeout(() => {
    const at = idleThreads.indexOf(thread);
    if (at >= 0) idleThreads.splice(at, 1);
    thread.terminate();
  }, IDLE_THREAD_MS);
  Deno.unrefTimer(timer);
  thread.idleTimer = timer;
}

/**
 * Starts a hash thread now, if none is idle, so the one a large download takes is warm by the time
 * its first bytes land (starting one takes about as long as locating the file on the Hub).
 */
export function warmHashThread(): void {
  if (idleThreads.some((thread) => thread.alive)) return;
  returnThread(takeThread());
}

class WorkerFollower implements HashFollower {
  readonly #job = nextJob++;
  #thread: HashThread | undefined;
  #sent = 0;
  readonly #size: number;

  constructor(path: string, size: number, gitSha1: boolean) {
    this.#size = size;
    this.#thread = takeThread();
    this.#thread.send({ type: "init", job: this.#job, path, size, gitSha1 });
  }

  advance(to: number): void {
    // In the last step every advance is sent: what the worker has not heard of is hashed after the last byte.
    if (to <= this.#sent || (to - this.#sent < ADVANCE_STEP_BYTES && to < this.#size - ADVANCE_STEP_BYTES)) return;
    this.#sent = to;
    this.#thread?.send({ type: "advance", job: this.#job, to });
  }

  finish(): Promise<Digests> {
    const thread = this.#thread;
    if (!thread) return Promise.reject(new Error("hashing already ended"));
    this.#thread = undefined;
    return new Promise<Digests>((resolve, reject) => {
      thread.expect(this.#job, (reply) => {
        returnThread(thread);
        if (reply.type === "digest") resolve(reply.digests);
        else reject(new Error(`hashing failed: ${reply.message}`));
      });
      thread.send({ type: "finish", job: this.#job });
    });
  }

  close(): void {
    const thread = this.#thread;
    if (!thread) return;
    this.#thread = undefined;
    thread.send({ type: "close", job: this.#job });
    returnThread(thread);
  }
}

class InlineFollower implements HashFollower {
  constructor(readonly path: string, readonly size: number, readonly gitSha1: boolean) {}
  advance(): void {}
  finish(): Promise<Digests> {
    const hasher = new PrefixHasher(this.path, this.size, this.gitSha1);
    try {
      return Promise.resolve(hasher.finish());
    } finally {
      hasher.close();
    }
  }
  close(): void {}
}

/**
 * A follower for `path` of `size` bytes: a worker thread for large files, inline for small ones.
 * `gitSha1` also computes the git blob id (for files the Hub identifies only by it).
 */
export function followHash(path: string, size: number, gitSha1 = false): HashFollower {
  return size >= HASH_WORKER_MIN_BYTES
    ? new WorkerFollower(path, size, gitSha1)
    : new InlineFollower(path, size, gitSha1);
}

/**
 * The digests of the `size` bytes of a file already on disk (a worker thread for large files, as
 * {@link followHash}). Rejects when the file is shorter than `size` or cannot be read.
 */
export async function hashFile(path: string, size: number, gitSha1 = false): Promise<Digests> {
  const follower = followHash(path, size, gitSha1);
  try {
    return await follower.finish();
  } finally {
    follower.close();
  }
}
