/**
 * Latest frame wins: at most one frame per session is in the detector and at most one waits; a
 * newer frame replaces the waiting one, so a slow model never builds a backlog.
 * @module
 */
import type { EncodedFrame } from "./frame_protocol.ts";

/** Counters a scheduler keeps. */
export interface ScheduleStats {
  /** Frames handed to the worker. */
  started: number;
  /** Frames replaced by a newer one before the worker got to them. */
  superseded: number;
}

/**
 * Feeds frames to `work` one at a time, always the newest.
 *
 * @example
 * ```ts
 * const scheduler = new LatestFrameScheduler(async (frame) => void await detector.detect(frame, signal), {
 *   onError: (error) => log.warn("frame failed", { error }),
 * });
 * scheduler.offer(frame);
 * ```
 */
export class LatestFrameScheduler {
  readonly stats: ScheduleStats = { started: 0, superseded: 0 };
  #work: (frame: EncodedFrame, queuedAt: number) => Promise<void>;
  #waiting?: { frame: EncodedFrame; queuedAt: number };
  #running = false;
  #closed = false;
  #idle?: PromiseWithResolvers<void>;
  #onError: (error: unknown, frame: EncodedFrame) => void;

  constructor(
    work: (frame: EncodedFrame, queuedAt: number) => Promise<void>,
    options: { onError: (error: unknown, frame: EncodedFrame) => void },
  ) {
    this.#work = work;
    this.#onError = options.onError;
  }

  /** Whether a frame is in the worker now. */
  get busy(): boolean {
    return this.#running;
  }

  /** Hands a frame over; it runs now, or waits in place of any frame already waiting. */
  offer(frame: EncodedFrame): void {
    if (this.#closed) return;
    if (this.#waiting) this.stats.superseded++;
    this.#waiting = { frame, queuedAt: performance.now() };
    if (!this.#running) void this.#loop();
  }

  async #loop(): Promise<void> {
    this.#running = true;
    try {
      while (this.#waiting && !this.#closed) {
        const { frame, queuedAt } = this.#waiting;
        this.#waiting = undefined;
        this.stats.started++;
        // One frame's failure must not stop the next: it is reported, and the loop goes on.
        await this.#work(frame, queuedAt).catch((error) => this.#onError(error, frame));
      }
    } finally {
      this.#running = false;
      this.#idle?.resolve();
      this.#idle = undefined;
    }
  }

  /** Drops the waiting frame and resolves once the running one (if any) has finished. */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#waiting) this.stats.superseded++;
    this.#waiting = undefined;
    if (!this.#running) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }
}
