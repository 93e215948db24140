/**
 * Worker thread that hashes a `.partial` file while it downloads, so hashing a multi-GB file costs
 * no time after the last byte and no time on the thread that moves bytes. One worker serves one
 * download at a time and then waits, warm, for the next (`_hash_follower.ts` keeps it); every
 * message carries its job's number, and messages of a job that is over are ignored.
 * @module
 */
import { parentPort } from "node:worker_threads";
import { PrefixHasher } from "./_hash_core.ts";

/** What the downloading thread sends. */
export type HashRequest =
  | { type: "init"; job: number; path: string; size: number; gitSha1: boolean }
  | { type: "advance"; job: number; to: number }
  | { type: "finish"; job: number }
  | { type: "close"; job: number };

/** What the worker answers: exactly once per `finish`, and never otherwise. */
export type HashReply =
  | { type: "digest"; job: number; digests: { sha256: string; gitSha1?: string } }
  | { type: "error"; job: number; message: string };

const port = parentPort;
if (!port) throw new Error("_hash_worker.ts runs only as a worker thread");

let current: { job: number; hasher: PrefixHasher } | undefined;
/** Why the last job stopped early, told when it asks to finish. */
let failed: { job: number; message: string } | undefined;

function end(): void {
  current?.hasher.close();
  current = undefined;
}

function fail(job: number, error: unknown): void {
  end();
  failed = { job, message: error instanceof Error ? error.message : String(error) };
}

port.on("message", (message: HashRequest) => {
  const { job } = message;
  if (message.type === "init") {
    end();
    failed = undefined;
    try {
      current = { job, hasher: new PrefixHasher(message.path, message.size, message.gitSha1) };
    } catch (error) {
      fail(job, error);
    }
    return;
  }
  if (current?.job !== job) {
    if (message.type !== "finish") return; // a job that failed or was closed
    const reason = failed?.job === job ? failed.message : `no hash in progress for job ${job}`;
    port.postMessage({ type: "error", job, message: reason } satisfies HashReply);
    return;
  }
  try {
    if (message.type === "advance") return current.hasher.advance(message.to);
    if (message.type === "close") return end();
    const digests = current.hasher.finish();
    end();
    port.postMessage({ type: "digest", job, digests } satisfies HashReply);
  } catch (error) {
    fail(job, error);
    if (message.type === "finish") {
      port.postMessage({ type: "error", job, message: failed!.message } satisfies HashReply);
    }
  }
});
