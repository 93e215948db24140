/**
 * The checkpoint worker: one read-write connection per store, used only to run
 * `PRAGMA wal_checkpoint(PASSIVE)`, which copies committed WAL frames into the store file (and
 * fsyncs both) without taking the write lock, so the main thread's commits only append to the WAL.
 * Started by {@link WalCheckpointer}; it runs at a lower thread priority than the event loop.
 */
/// <reference lib="deno.worker" />
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { lowerThreadPriority } from "./_thread_priority.ts";

lowerThreadPriority();

/** A message to the checkpoint worker. */
export type CheckpointRequest =
  | { kind: "start"; paths: string[]; busyMs: number; idleMs: number; synchronous: string }
  | { kind: "close" };

/** The worker's answers: `started`/`closed` acknowledge a request; `error` reports a failed pass. */
export type CheckpointReply = { kind: "started" } | { kind: "closed" } | { kind: "error"; message: string };

interface Store {
  db: DatabaseSync;
  checkpoint: StatementSync;
  /** WAL frames seen at the last pass; a change means something was committed since. */
  frames: number;
}

let stores: Store[] = [];
let timer: ReturnType<typeof setTimeout> | undefined;
let closed = false;

/** One pass over the stores; true when any WAL had grown since the last pass. */
function pass(): boolean {
  let written = false;
  for (const store of stores) {
    const row = store.checkpoint.get() as { busy: number; log: number; checkpointed: number };
    if (row.log !== store.frames) written = true;
    store.frames = row.log;
  }
  return written;
}

function schedule(busyMs: number, idleMs: number, ms: number): void {
  if (closed) return;
  timer = setTimeout(() => {
    let next = idleMs;
    try {
      next = pass() ? busyMs : idleMs;
    } catch (error) {
      self.postMessage({ kind: "error", message: error instanceof Error ? error.message : String(error) });
    }
    schedule(busyMs, idleMs, next);
  }, ms);
}

function closeAll(): void {
  closed = true;
  clearTimeout(timer);
  for (const store of stores) store.db.close();
  stores = [];
}

self.onmessage = (event: MessageEvent<CheckpointRequest>) => {
  const request = event.data;
  if (request.kind === "close") {
    closeAll();
    self.postMessage({ kind: "closed" } satisfies CheckpointReply);
    return;
  }
  try {
    for (const path of request.paths) {
      const db = new DatabaseSync(path);
      stores.push({ db, checkpoint: db.prepare("PRAGMA wal_checkpoint(PASSIVE)"), frames: -1 });
      // The checkpointer fsyncs the WAL before copying and the file after, as the writer would.
      db.exec(`PRAGMA synchronous = ${request.synchronous}`);
    }
  } catch (error) {
    closeAll();
    self.postMessage({ kind: "error", message: error instanceof Error ? error.message : String(error) });
    return;
  }
  self.postMessage({ kind: "started" } satisfies CheckpointReply);
  schedule(request.busyMs, request.idleMs, request.busyMs);
};
