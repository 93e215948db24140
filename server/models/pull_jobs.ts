/**
 * Pull jobs: pulls run in the background, one per model at a time, cancellable and observable.
 * Listeners get progress snapshots (bytes, rate, ETA), throttled to {@link PROGRESS_INTERVAL_MS}.
 * @module
 */
import { TabAgentError, toProblem, toTabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { ModelCache } from "./cache.ts";
import type { CatalogEntry } from "./catalog/catalog.ts";
import type { HubClient } from "./hub_client.ts";
import { MAX_PULL_JOBS, PROGRESS_INTERVAL_MS } from "./limits.ts";
import { type FileProgress, pullModel, type PullProgress, type PullRequest, type PullState } from "./pull.ts";
import type { ModelId } from "./repo_id.ts";

/** How far back the transfer rate looks (ms). */
const RATE_WINDOW_MS = 5_000;

/** A background pull. */
export interface PullJob {
  readonly id: string;
  readonly request: PullRequest;
  readonly done: Promise<void>;
  /** The current snapshot; reading it changes nothing. */
  progress(): PullProgress;
  /** Called on every change (throttled to {@link PROGRESS_INTERVAL_MS}) and once at the end. */
  subscribe(listener: (progress: PullProgress) => void): () => void;
  cancel(): void;
  finished(): boolean;
}

/** What every job needs from its registry. */
interface JobDeps {
  cache: ModelCache;
  hub: () => Promise<HubClient>;
  log?: Logger;
  catalog?: CatalogEntry[];
  connections?: number;
}

/** One pull's state and listeners. */
class Job implements PullJob {
  readonly id = crypto.randomUUID();
  readonly done: Promise<void>;
  #controller = new AbortController();
  #listeners = new Set<(progress: PullProgress) => void>();
  #state: PullState = "queued";
  #revision: string | undefined;
  #files: FileProgress[] = [];
  #error: Record<string, unknown> | undefined;
  /** (time, bytes) samples of the last few seconds, recorded as progress arrives. */
  #samples: { t: number; bytes: number }[] = [];
  #lastEmit = 0;
  #pending: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly request: PullRequest, deps: JobDeps) {
    this.done = this.#run(deps);
  }

  async #run(deps: JobDeps): Promise<void> {
    try {
      await pullModel({
        cache: deps.cache,
        hub: await deps.hub(),
        request: { connections: deps.connections, ...this.request },
        catalog: deps.catalog,
        signal: this.#controller.signal,
        log: deps.log,
        onProgress: (update) => {
          this.#state = update.state;
          this.#revision = update.revision ?? this.#revision;
          this.#files = update.files;
          this.#sample();
          this.#emit(update.state !== "downloading");
        },
      });
      this.#state = "done";
    } catch (caught) {
      const typed = this.#controller.signal.aborted
        ? new TabAgentError("cancelled", "Pull cancelled")
        : toTabAgentError(caught);
      this.#state = typed.code === "cancelled" ? "cancelled" : "failed";
      this.#error = toProblem(typed) as unknown as Record<string, unknown>;
      if (this.#state === "failed") deps.log?.warn("pull failed", { id: this.request.id, error: caught });
    }
    this.#emit(true);
  }

  #bytes(): number {
    return this.#files.reduce((sum, f) => sum + f.bytes, 0);
  }

  /** Records a rate sample; the window keeps at least two. */
  #sample(): void {
    const now = performance.now();
    this.#samples.push({ t: now, bytes: this.#bytes() });
    while (this.#samples.length > 2 && now - this.#samples[0].t > RATE_WINDOW_MS) this.#samples.shift();
  }

  progress(): PullProgress {
    const bytes = this.#bytes();
    const total = this.#files.reduce((sum, f) => sum + f.size, 0);
    // The rate over the recorded samples: a function of the job's state, whenever it is read.
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    const span = first ? last.t - first.t : 0;
    const rate = span > 200 ? Math.max(0, (last.bytes - first.bytes) / (span / 1000)) : 0;
    const eta = this.#state === "done" ? 0 : rate > 0 ? (total - bytes) / rate : null;
    return {
      job: this.id,
      id: this.request.id,
      state: this.#state,
      revision: this.#revision,
      bytes,
      total,
      rate: Math.round(rate),
      eta_s: eta === null ? null : Math.round(eta * 10) / 10,
      files: this.#files.map((f) => ({ ...f })),
      ...(this.#error ? { error: this.#error } : {}),
    };
  }

  /** Tells the listeners, at most once per {@link PROGRESS_INTERVAL_MS} unless `force`. */
  #emit(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.#lastEmit < PROGRESS_INTERVAL_MS) {
      this.#pending ??= setTimeout(() => {
        this.#pending = undefined;
        this.#emit(true);
      }, PROGRESS_INTERVAL_MS);
      return;
    }
    clearTimeout(this.#pending);
    this.#pending = undefined;
    this.#lastEmit = now;
    const current = this.progress();
    for (const listener of this.#listeners) listener(current);
  }

  subscribe(listener: (progress: PullProgress) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  cancel(): void {
    this.#controller.abort();
  }

  finished(): boolean {
    return this.#state === "done" || this.#state === "failed" || this.#state === "cancelled";
  }
}

/** The key under which ids that differ only in case are one model (they share a folder on macOS and Windows). */
function caseKey(id: ModelId): string {
  return id.toLowerCase();
}

/**
 * Runs pulls in the background: one job per model at a time, cancellable, observable.
 *
 * @example
 * ```ts
 * const jobs = new PullJobs({ cache, hub: () => createHubClient(dataDir, Deno.env.toObject()) });
 * const job = jobs.start({ id: "Qwen/Qwen2.5-0.5B-Instruct-GGUF" });
 * job.subscribe((p) => console.log(p.bytes, p.total));
 * await job.done;
 * ```
 */
export class PullJobs {
  #jobs = new Map<string, PullJob>();
  /** Running jobs by {@link caseKey}: ids differing only in case share a folder on macOS and Windows. */
  #active = new Map<string, PullJob>();
  /** Models a delete or verify holds by {@link caseKey}, with what it is doing: pulls are refused meanwhile. */
  #reserved = new Map<string, string>();

  constructor(
    private readonly deps: {
      cache: ModelCache;
      /** A client per pull, so a token stored by `tabagent login` applies without a restart. */
      hub: () => Promise<HubClient>;
      log?: Logger;
      catalog?: CatalogEntry[];
      connections?: number;
    },
  ) {}

  /** Starts a pull, or returns the job already pulling the same model. */
  start(request: PullRequest): PullJob {
    const key = caseKey(request.id);
    const running = this.#active.get(key);
    if (running && running.request.id !== request.id) {
      throw new TabAgentError(
        "conflict",
        `${running.request.id} is being pulled; ${request.id} differs from it only in case and would share its folder`,
      );
    }
    const holder = this.#reserved.get(key);
    if (!running && holder) {
      throw new TabAgentError("conflict", `${request.id} is being ${holder}; pull it when that is done`);
    }
    if (running) return running;
    const job = new Job(request, this.deps);
    this.#jobs.set(job.id, job);
    this.#active.set(key, job);
    job.done.finally(() => this.#active.delete(key));
    this.#prune();
    return job;
  }

  /** The job with this id, while it is kept. */
  get(id: string): PullJob | undefined {
    return this.#jobs.get(id);
  }

  /** True while a job pulls `id` (or an id differing from it only in case). */
  isPulling(id: ModelId): boolean {
    return this.#active.has(caseKey(id));
  }

  /**
   * Holds `id` for a delete or verify (`doing`: "deleted", "verified"): refused with 409 while it is
   * being pulled or held, and no pull starts until the returned release is called. This closes the
   * gap between checking for a pull and acting on the folder.
   */
  reserve(id: ModelId, doing: string): () => void {
    const key = caseKey(id);
    const running = this.#active.get(key);
    if (running) throw new TabAgentError("conflict", `${running.request.id} is being pulled; cancel the pull first`);
    const holder = this.#reserved.get(key);
    if (holder) throw new TabAgentError("conflict", `${id} is being ${holder}; try again when that is done`);
    this.#reserved.set(key, doing);
    return () => this.#reserved.delete(key);
  }

  /** Cancels every running job and waits for them to stop (server shutdown). */
  async cancelAll(): Promise<void> {
    const running = [...this.#active.values()];
    for (const job of running) job.cancel();
    await Promise.allSettled(running.map((job) => job.done));
  }

  #prune(): void {
    if (this.#jobs.size <= MAX_PULL_JOBS) return;
    for (const [id, job] of this.#jobs) {
      if (this.#jobs.size <= MAX_PULL_JOBS) break;
      if (job.finished()) this.#jobs.delete(id);
    }
  }
}
