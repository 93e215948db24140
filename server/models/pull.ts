/**
 * Pulling a model: resolve the repository on the Hub, choose its files (catalog entry, patterns,
 * or a GGUF quantisation), download each with {@link downloadFile}, and record the manifest. Pull
 * jobs run in the background with progress (bytes, rate, ETA) that HTTP streams as SSE.
 * @module
 */
import { TabAgentError, toProblem, toTabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Manifest, ModelCache } from "./cache.ts";
import { type CatalogEntry, defaultCatalog, entryPatterns } from "./catalog/catalog.ts";
import { matchesAny } from "./glob.ts";
import { confirmFile } from "./verify.ts";
import { downloadFile } from "./downloader.ts";
import type { HubClient, HubFile } from "./hub_client.ts";
import { MAX_PULL_JOBS, PROGRESS_INTERVAL_MS } from "./limits.ts";
import type { ModelId } from "./repo_id.ts";

/** What to pull. */
export interface PullRequest {
  id: ModelId;
  /** Branch, tag or commit; default: the catalog's pin, else `main`. */
  revision?: string;
  /** Exact paths or glob patterns; default: the catalog's list, else a sensible choice. */
  files?: string[];
  /** For GGUF repositories with several quantisations: which one (default `Q4_K_M`). */
  quant?: string;
  /** Parallel connections per file. */
  connections?: number;
}

/** Progress of one file. */
export interface FileProgress {
  path: string;
  size: number;
  bytes: number;
  state: "queued" | "waiting" | "downloading" | "done";
}

/** The states of a pull. */
export const PULL_STATES = ["queued", "resolving", "downloading", "done", "failed", "cancelled"] as const;
/** A pull state. */
export type PullState = typeof PULL_STATES[number];

/** A snapshot of a pull, as streamed to clients. */
export interface PullProgress {
  job: string;
  id: ModelId;
  state: PullState;
  revision?: string;
  /** Bytes on disk for the selected files (resumed ones included). */
  bytes: number;
  total: number;
  /** Bytes per second over the last few seconds. */
  rate: number;
  /** Seconds left at the current rate; null when unknown. */
  eta_s: number | null;
  files: FileProgress[];
  error?: Record<string, unknown>;
}

const DEFAULT_QUANT = "Q4_K_M";
const SKIPPED_BY_DEFAULT = [".gitattributes", "*.h5", "**/*.h5", "*.msgpack", "*.ot", "openvino/**", "*.mlmodel"];

/** Chooses which of a repository's files to fetch. */
export function selectFiles(
  files: HubFile[],
  options: { patterns?: string[]; quant?: string; catalog?: CatalogEntry },
): HubFile[] {
  const patterns = options.patterns?.length
    ? options.patterns
    : options.catalog
    ? entryPatterns(options.catalog)
    : null;
  if (patterns) {
    const chosen = files.filter((f) => matchesAny(f.path, patterns));
    if (chosen.length === 0) {
      throw new TabAgentError("not_found", `No file of the repository matches ${patterns.join(", ")}`, {
        available: files.map((f) => f.path).slice(0, 50),
      });
    }
    return chosen;
  }
  const ggufs = files.filter((f) => f.path.toLowerCase().endsWith(".gguf"));
  if (ggufs.length > 1 || (ggufs.length === 1 && options.quant)) {
    const quant = (options.quant ?? DEFAULT_QUANT).toLowerCase();
    const chosen = ggufs.filter((f) => f.path.toLowerCase().includes(quant));
    if (chosen.length === 0) {
      throw new TabAgentError("not_found", `No GGUF file for quantisation ${options.quant ?? DEFAULT_QUANT}`, {
        available: ggufs.map((f) => f.path),
      });
    }
    return chosen;
  }
  const hasSafetensors = files.some((f) => f.path.endsWith(".safetensors"));
  return files.filter((f) =>
    !matchesAny(f.path, SKIPPED_BY_DEFAULT) &&
    !(hasSafetensors && /(^|\/)(pytorch_model.*\.bin|.*\.pt)$/.test(f.path))
  );
}

/** Options for {@link pullModel}. */
export interface PullOptions {
  cache: ModelCache;
  hub: HubClient;
  request: PullRequest;
  catalog?: CatalogEntry[];
  signal?: AbortSignal;
  log?: Logger;
  /** Called with the file list once resolved, then on every write. */
  onProgress?: (update: { state: PullState; revision?: string; files: FileProgress[] }) => void;
}

/**
 * Pulls a model into the cache and returns its manifest. Files already complete at the same
 * content are skipped; interrupted ones resume.
 *
 * @example
 * ```ts
 * const manifest = await pullModel({ cache, hub, request: { id: "Qwen/Qwen2.5-0.5B-Instruct-GGUF" } });
 * ```
 */
export async function pullModel(options: PullOptions): Promise<Manifest> {
  const { cache, hub, request, log } = options;
  await cache.assertNoCaseTwin(request.id);
  const entry = (options.catalog ?? defaultCatalog()).find((m) => m.id === request.id);
  const requested = request.revision ?? entry?.revision ?? "main";
  options.onProgress?.({ state: "resolving", files: [] });
  const repo = await hub.repo(request.id, requested, options.signal);
  const chosen = selectFiles(repo.files, {
    patterns: request.files,
    quant: request.quant,
    catalog: request.files?.length ? undefined : entry,
  });
  // A catalog entry may pin sizes and hashes: the Hub must agree.
  for (const file of chosen) {
    const pin = entry?.files.find((f) => "path" in f && f.path === file.path);
    if (pin && "path" in pin && pin.sha256 && file.sha256 && pin.sha256 !== file.sha256) {
      throw new TabAgentError(
        "checksum_mismatch",
        `${request.id}/${file.path} on the Hub is not the catalog's pinned file`,
        {
          expected: pin.sha256,
          actual: file.sha256,
        },
      );
    }
  }
  const progress: FileProgress[] = chosen.map((f) => ({ path: f.path, size: f.size, bytes: 0, state: "queued" }));
  const previous = await cache.readManifest(request.id);
  const manifestFiles: Manifest["files"] = [];
  const report = () => options.onProgress?.({ state: "downloading", revision: repo.commit, files: progress });
  report();
  await cache.writeManifest({
    repo: request.id,
    revision: repo.commit,
    requested_revision: requested,
    files: chosen.filter((f) => f.sha256).map((f) => ({ path: f.path, size: f.size, sha256: f.sha256! })),
    complete: false,
    task: entry?.task ?? repo.pipelineTag,
    format: entry?.format,
    updated_at: new Date().toISOString(),
  });
  for (const [index, file] of chosen.entries()) {
    const dest = cache.filePath(request.id, file.path);
    const known = previous?.files.find((f) => f.path === file.path);
    const onDisk = await Deno.stat(dest).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    });
    const sameFile = known && known.size === file.size &&
      (file.sha256 ? known.sha256 === file.sha256 : known.git_oid !== undefined && known.git_oid === file.gitOid);
    // The size alone does not prove the bytes: a file changed on disk since it was hashed is re-hashed.
    const intact = sameFile && onDisk?.isFile ? await confirmFile(dest, known, onDisk) : null;
    if (intact) {
      progress[index] = { ...progress[index], bytes: file.size, state: "done" };
      manifestFiles.push(intact);
      report();
      continue;
    }
    progress[index].state = "downloading";
    const result = await downloadFile({
      hub,
      url: hub.resolveUrl(request.id, repo.commit, file.path),
      dest,
      expected: { size: file.size, sha256: file.sha256, gitSha1: file.gitOid },
      connections: request.connections,
      signal: options.signal,
      log,
      onWait: () => {
        progress[index].state = "waiting";
        report();
      },
      onProgress: (bytes) => {
        progress[index].bytes = bytes;
        progress[index].state = "downloading";
        report();
      },
    });
    progress[index] = { ...progress[index], bytes: file.size, state: "done" };
    manifestFiles.push({
      path: file.path,
      size: file.size,
      sha256: result.sha256,
      ...(file.sha256 ? {} : { git_oid: result.gitSha1 }),
      mtime_ms: (await Deno.stat(dest)).mtime?.getTime(),
    });
    report();
  }
  const manifest: Manifest = {
    repo: request.id,
    revision: repo.commit,
    requested_revision: requested,
    files: manifestFiles,
    complete: true,
    task: entry?.task ?? repo.pipelineTag,
    format: entry?.format ?? guessFormat(manifestFiles.map((f) => f.path)),
    updated_at: new Date().toISOString(),
  };
  await cache.writeManifest(manifest);
  options.onProgress?.({ state: "done", revision: repo.commit, files: progress });
  log?.info("model pulled", { id: request.id, revision: repo.commit, files: manifestFiles.length });
  return manifest;
}

/** The weight format a file list suggests. */
export function guessFormat(paths: string[]): string | undefined {
  for (const ext of ["gguf", "onnx", "safetensors", "tflite"]) {
    if (paths.some((p) => p.toLowerCase().endsWith(`.${ext}`))) return ext;
  }
  return undefined;
}

/** The key under which ids that differ only in case are one model (they share a folder on macOS and Windows). */
function caseKey(id: ModelId): string {
  return id.toLowerCase();
}

/** A background pull. */
export interface PullJob {
  readonly id: string;
  readonly request: PullRequest;
  readonly done: Promise<void>;
  progress(): PullProgress;
  /** Called on every change (throttled to {@link PROGRESS_INTERVAL_MS}) and once at the end. */
  subscribe(listener: (progress: PullProgress) => void): () => void;
  cancel(): void;
  finished(): boolean;
}

/** Runs pulls in the background: one job per model at a time, cancellable, observable. */
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
    if (running && running.request.id === request.id) return running;
    if (running) {
      throw new TabAgentError(
        "conflict",
        `${running.request.id} is being pulled; ${request.id} differs from it only in case and would share its folder`,
      );
    }
    const holder = this.#reserved.get(key);
    if (holder) throw new TabAgentError("conflict", `${request.id} is being ${holder}; pull it when that is done`);
    const job = this.#createJob(request);
    this.#jobs.set(job.id, job);
    this.#active.set(key, job);
    job.done.finally(() => this.#active.delete(key));
    this.#prune();
    return job;
  }

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

  #createJob(request: PullRequest): PullJob {
    const id = crypto.randomUUID();
    const controller = new AbortController();
    const listeners = new Set<(progress: PullProgress) => void>();
    let state: PullState = "queued";
    let revision: string | undefined;
    let files: FileProgress[] = [];
    let error: Record<string, unknown> | undefined;
    // Rate over a sliding window of (time, bytes) samples.
    const samples: { t: number; bytes: number }[] = [];
    const snapshot = (): PullProgress => {
      const bytes = files.reduce((sum, f) => sum + f.bytes, 0);
      const total = files.reduce((sum, f) => sum + f.size, 0);
      const now = performance.now();
      samples.push({ t: now, bytes });
      while (samples.length > 2 && now - samples[0].t > 5_000) samples.shift();
      const first = samples[0];
      const rate = now - first.t > 200 ? Math.max(0, (bytes - first.bytes) / ((now - first.t) / 1000)) : 0;
      const eta = state === "done" ? 0 : rate > 0 ? (total - bytes) / rate : null;
      return {
        job: id,
        id: request.id,
        state,
        revision,
        bytes,
        total,
        rate: Math.round(rate),
        eta_s: eta === null ? null : Math.round(eta * 10) / 10,
        files: files.map((f) => ({ ...f })),
        ...(error ? { error } : {}),
      };
    };
    let lastEmit = 0;
    let pending: ReturnType<typeof setTimeout> | undefined;
    const emit = (force = false) => {
      const now = performance.now();
      if (!force && now - lastEmit < PROGRESS_INTERVAL_MS) {
        pending ??= setTimeout(() => {
          pending = undefined;
          emit(true);
        }, PROGRESS_INTERVAL_MS);
        return;
      }
      clearTimeout(pending);
      pending = undefined;
      lastEmit = now;
      const current = snapshot();
      for (const listener of listeners) listener(current);
    };
    const done = (async () => {
      try {
        await pullModel({
          cache: this.deps.cache,
          hub: await this.deps.hub(),
          request: { connections: this.deps.connections, ...request },
          catalog: this.deps.catalog,
          signal: controller.signal,
          log: this.deps.log,
          onProgress: (update) => {
            state = update.state;
            revision = update.revision ?? revision;
            files = update.files;
            emit(update.state !== "downloading");
          },
        });
        state = "done";
      } catch (caught) {
        const typed = controller.signal.aborted
          ? new TabAgentError("cancelled", "Pull cancelled")
          : toTabAgentError(caught);
        state = typed.code === "cancelled" ? "cancelled" : "failed";
        error = toProblem(typed) as unknown as Record<string, unknown>;
        if (state === "failed") this.deps.log?.warn("pull failed", { id: request.id, error: caught });
      }
      emit(true);
    })();
    return {
      id,
      request,
      done,
      progress: snapshot,
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      cancel: () => controller.abort(),
      finished: () => state === "done" || state === "failed" || state === "cancelled",
    };
  }
}
