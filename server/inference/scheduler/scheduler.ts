/** Priority scheduling for model calls: queues, per-model concurrency, memory, deadlines, cancellation. */
import { TabAgentError } from "../../errors/mod.ts";

/** Interactive work (a person waiting on a chat) always goes before background work. */
export type Priority = "interactive" | "background";

/** A background job waiting longer than this is served as if interactive, so it cannot starve (ms). */
export const BACKGROUND_STARVATION_MS = 30_000;
/** Jobs that may wait in the queues at once; more are refused with 429. */
export const MAX_QUEUED_JOBS = 256;

/** What a job asks for. */
export interface JobOptions {
  /** The model the job runs on: its concurrency limit applies. */
  model: string;
  priority?: Priority;
  /** Absolute time (epoch ms) by which the job must finish; queued past it → `timeout`. */
  deadline?: number;
  /** Cancels the job, queued or running. */
  signal?: AbortSignal;
}

/** What a running job gets. */
export interface JobLease {
  /** Aborts on caller cancel, deadline or scheduler shutdown; pass it to the model call. */
  signal: AbortSignal;
  /** How long the job waited in the queue (ms). */
  queuedMs: number;
}

interface Job {
  options: JobOptions;
  priority: Priority;
  enqueued: number;
  start: () => void;
  fail: (error: TabAgentError) => void;
}

/** A snapshot for `/v1/inference/status` and metrics. */
export interface SchedulerStats {
  queued: { interactive: number; background: number };
  running: Record<string, number>;
  limits: Record<string, number>;
}

/**
 * Every model call runs through {@link Scheduler.run}: it waits for a free slot on its model,
 * interactive jobs first, and gets a signal that aborts on cancel, deadline or stop. Memory is not
 * its business: the orchestrator owns the budget and loads or evicts whole models by it.
 *
 * @example
 * ```ts
 * const scheduler = new Scheduler();
 * scheduler.setConcurrency("org/model", 4);
 * const text = await scheduler.run({ model: "org/model" }, (lease) => generate(lease.signal));
 * ```
 */
export class Scheduler {
  #queues: Record<Priority, Job[]> = { interactive: [], background: [] };
  #running = new Map<string, number>();
  #limits = new Map<string, number>();
  #defaultConcurrency: number;
  #closed = false;
  #shutdown = new AbortController();

  constructor(options: { defaultConcurrency?: number } = {}) {
    this.#defaultConcurrency = options.defaultConcurrency ?? 1;
  }

  /** Sets how many jobs may run at once on `model` (e.g. its context's sequence count). */
  setConcurrency(model: string, limit: number): void {
    this.#limits.set(model, Math.max(1, limit));
    this.#dispatch();
  }

  /** Forgets a model's limit (after unload). */
  clearConcurrency(model: string): void {
    this.#limits.delete(model);
  }

  #limit(model: string): number {
    return this.#limits.get(model) ?? this.#defaultConcurrency;
  }

  /** Runs `task` when its model has a free slot; rejects with a typed error when it cannot run. */
  run<T>(options: JobOptions, task: (lease: JobLease) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new TabAgentError("unavailable", "The server is shutting down"));
    if (options.signal?.aborted) return Promise.reject(cancelled(options.signal));
    if (options.deadline !== undefined && options.deadline <= Date.now()) {
      return Promise.reject(new TabAgentError("timeout", "The request's deadline passed before it could start"));
    }
    if (this.#queues.interactive.length + this.#queues.background.length >= MAX_QUEUED_JOBS) {
      return Promise.reject(new TabAgentError("too_many_requests", "Too many model calls are waiting; retry later"));
    }
    const priority = options.priority ?? "interactive";
    const result = Promise.withResolvers<T>();
    const enqueued = performance.now();
    let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      if (this.#remove(job)) {
        cleanup();
        result.reject(cancelled(options.signal!));
      }
    };
    const cleanup = () => {
      clearTimeout(deadlineTimer);
      options.signal?.removeEventListener("abort", onAbort);
    };
    const job: Job = {
      options,
      priority,
      enqueued,
      fail: (error) => {
        cleanup();
        result.reject(error);
      },
      start: () => {
        cleanup();
        this.#acquire(options);
        const controller = new AbortController();
        const signals = [controller.signal, this.#shutdown.signal];
        if (options.signal) signals.push(options.signal);
        if (options.deadline !== undefined) {
          signals.push(AbortSignal.timeout(Math.max(0, options.deadline - Date.now())));
        }
        const signal = AbortSignal.any(signals);
        let settled: Promise<T>;
        try {
          settled = Promise.resolve(task({ signal, queuedMs: performance.now() - enqueued }));
        } catch (error) {
          settled = Promise.reject(error);
        }
        settled.then(result.resolve, (error) => {
          if (signal.aborted && !(error instanceof TabAgentError)) result.reject(cancelled(signal));
          else result.reject(error);
        }).finally(() => {
          this.#release(options);
          this.#dispatch();
        });
      },
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.deadline !== undefined) {
      deadlineTimer = setTimeout(() => {
        if (this.#remove(job)) {
          cleanup();
          result.reject(new TabAgentError("timeout", "The request's deadline passed while it was queued"));
        }
      }, options.deadline - Date.now());
    }
    this.#queues[priority].push(job);
    this.#dispatch();
    return result.promise;
  }

  #remove(job: Job): boolean {
    const queue = this.#queues[job.priority];
    const index = queue.indexOf(job);
    if (index === -1) return false;
    queue.splice(index, 1);
    return true;
  }

  #acquire(options: JobOptions): void {
    this.#running.set(options.model, (this.#running.get(options.model) ?? 0) + 1);
  }

  #release(options: JobOptions): void {
    const left = (this.#running.get(options.model) ?? 1) - 1;
    if (left <= 0) this.#running.delete(options.model);
    else this.#running.set(options.model, left);
  }

  #fits(job: Job): boolean {
    return (this.#running.get(job.options.model) ?? 0) < this.#limit(job.options.model);
  }

  /** Starts every queued job that fits, interactive (and starved background) first, FIFO within each. */
  #dispatch(): void {
    if (this.#closed) return;
    const now = performance.now();
    const starved = this.#queues.background.filter((job) => now - job.enqueued >= BACKGROUND_STARVATION_MS);
    const order = [...starved, ...this.#queues.interactive, ...this.#queues.background];
    for (const job of order) {
      if (!this.#fits(job)) continue;
      if (this.#remove(job)) job.start();
    }
  }

  /** A snapshot of queues and running jobs. */
  stats(): SchedulerStats {
    return {
      queued: { interactive: this.#queues.interactive.length, background: this.#queues.background.length },
      running: Object.fromEntries(this.#running),
      limits: Object.fromEntries(this.#limits),
    };
  }

  /** Jobs running on `model` now. */
  runningOn(model: string): number {
    return this.#running.get(model) ?? 0;
  }

  /** Refuses queued jobs and aborts running ones (server shutdown). */
  close(): void {
    this.#closed = true;
    for (const priority of ["interactive", "background"] as const) {
      for (const job of this.#queues[priority].splice(0)) {
        job.fail(new TabAgentError("unavailable", "The server is shutting down"));
      }
    }
    this.#shutdown.abort(new DOMException("The server is shutting down", "AbortError"));
  }
}

function cancelled(signal: AbortSignal): TabAgentError {
  const reason = signal.reason;
  if (reason instanceof TabAgentError) return reason;
  if (reason instanceof DOMException && reason.name === "TimeoutError") {
    return new TabAgentError("timeout", "The request's deadline passed", {}, { cause: reason });
  }
  return new TabAgentError("cancelled", "The request was cancelled", {}, { cause: reason });
}
