/**
 * Background WAL checkpoints. By default SQLite checkpoints on the connection that commits, once
 * the WAL passes 1,000 pages: the commit that crosses it copies the WAL into the store file and
 * fsyncs both, on the main thread, which costs about a quarter of the single-insert throughput.
 * {@link WalCheckpointer} runs those checkpoints in a worker with its own read-write connections
 * instead (`PASSIVE`: it never takes the write lock, so commits go on meanwhile), and raises the
 * writer's own threshold to {@link WAL_AUTOCHECKPOINT_PAGES}, a safety net that bounds the WAL if
 * the worker stalls or cannot start. Checkpoints move committed data between two files SQLite
 * keeps consistent; they change neither what a commit guarantees nor what a reader sees.
 */
import { MEMORY_CHECKPOINT_BUSY_MS, MEMORY_CHECKPOINT_IDLE_MS } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { CheckpointReply, CheckpointRequest } from "./_checkpoint_worker.ts";
import { STORE_NAMES, storeFile, type Stores, SYNCHRONOUS } from "./stores.ts";

/**
 * WAL pages after which a committing connection checkpoints by itself while the worker runs
 * (16 MiB at 4 KiB pages). During a long burst of writes the worker's checkpoints trail the
 * writer, so the WAL reaches this size; the writer then copies only the last few milliseconds of
 * frames and starts the WAL over.
 */
export const WAL_AUTOCHECKPOINT_PAGES = 4_096;
/** SQLite's own threshold, kept while no checkpoint worker runs. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1_000;
/** How long {@link WalCheckpointer.close} waits for the worker to close its connections (ms). */
const CLOSE_WAIT_MS = 2_000;

/** Checkpoints the seven stores in `dir` from a worker; see the module doc. */
export class WalCheckpointer {
  #worker: Worker;
  #closed = Promise.withResolvers<void>();
  #stopping = false;

  /** Starts the worker; once its connections are open, raises the writers' threshold on `stores`. */
  constructor(options: { dir: string; stores: Stores; log?: Logger }) {
    const { stores, log } = options;
    this.#worker = new Worker(new URL("./_checkpoint_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (event: MessageEvent<CheckpointReply>) => {
      const reply = event.data;
      if (reply.kind === "started") {
        if (!this.#stopping) setAutocheckpoint(stores, WAL_AUTOCHECKPOINT_PAGES);
      } else if (reply.kind === "closed") this.#closed.resolve();
      else log?.warn("WAL checkpoint failed; commits will checkpoint by themselves", { error: reply.message });
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      log?.warn("WAL checkpoint worker failed; commits will checkpoint by themselves", { error: event.message });
      if (!this.#stopping) setAutocheckpoint(stores, DEFAULT_AUTOCHECKPOINT_PAGES);
      this.#closed.resolve();
    };
    this.#post({
      kind: "start",
      paths: STORE_NAMES.map((store) => `${options.dir}/${storeFile(store)}`),
      busyMs: MEMORY_CHECKPOINT_BUSY_MS,
      idleMs: MEMORY_CHECKPOINT_IDLE_MS,
      synchronous: SYNCHRONOUS,
    });
  }

  #post(request: CheckpointRequest): void {
    this.#worker.postMessage(request);
  }

  /**
   * Closes the worker's connections (no handle on the store files may outlive it: a restore swaps
   * them next) and terminates it. The writers keep the raised threshold until they close.
   */
  async close(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#post({ kind: "close" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#closed.promise, new Promise((resolve) => timer = setTimeout(resolve, CLOSE_WAIT_MS))]);
    clearTimeout(timer);
    this.#worker.terminate();
  }
}

function setAutocheckpoint(stores: Stores, pages: number): void {
  for (const store of STORE_NAMES) if (stores[store].isOpen) stores[store].exec(`PRAGMA wal_autocheckpoint = ${pages}`);
}
