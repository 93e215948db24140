/**
 * The loop behind the memory's outbox-driven background workers (the embedding writer, the
 * weaver): it calls `pass()` again at once while a pass did work, sleeps `idleMs` when the queue
 * is empty, and backs off exponentially (up to a minute) while passes fail. Stopping aborts
 * {@link BackgroundLoop.signal} and waits for the pass in progress.
 */
import { TabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";

/** The longest wait between failing passes (ms). */
const MAX_BACKOFF_MS = 60_000;

/**
 * Runs one worker's passes in the background until stopped.
 *
 * @example
 * ```ts
 * const loop = new BackgroundLoop({ pass: () => writer.pass(), idleMs: 500, failure: "embedding memories failed" });
 * loop.start();
 * await loop.stop();
 * ```
 */
export class BackgroundLoop {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | null = null;
  #stopped = true;
  #stop = new AbortController();
  #failures = 0;

  constructor(
    private readonly options: {
      /** One batch of work; returns how many items it did (0 when the queue is empty). */
      pass: () => Promise<number>;
      /** How long to sleep when the queue is empty (and the base of the backoff) (ms). */
      idleMs: number;
      /** What the warning says when a pass fails ("; will retry" is appended). */
      failure: string;
      log?: Logger;
      /** Called after each pass: null when it succeeded, else its error. */
      onPass?: (error: unknown) => void;
    },
  ) {}

  /** Whether the loop is running (started and not stopped). */
  get running(): boolean {
    return !this.#stopped;
  }

  /** Aborted when the loop stops; passes hand it to slow calls (inference) so they end early. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Starts passing (at once); does nothing when already running. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#stop = new AbortController();
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#running = this.#tick().finally(() => (this.#running = null));
    }, ms);
  }

  async #tick(): Promise<void> {
    let done = 0;
    try {
      done = await this.options.pass();
      this.#failures = 0;
      this.options.onPass?.(null);
    } catch (error) {
      if (this.#stopped) return;
      this.#failures++;
      this.options.onPass?.(error);
      this.options.log?.warn(`${this.options.failure}; will retry`, { error, failures: this.#failures });
    }
    const backoff = Math.min(MAX_BACKOFF_MS, this.options.idleMs * 2 ** this.#failures);
    this.#schedule(done > 0 ? 0 : this.#failures ? backoff : this.options.idleMs);
  }

  /** Stops the loop, aborts {@link signal} and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#stop.abort(new TabAgentError("unavailable", "Memory is closing"));
    await this.#running?.catch(() => {});
  }
}
