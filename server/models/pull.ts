/**
 * Pulling a model: resolve the repository on the Hub, choose its files ({@link selectFiles}),
 * download each with {@link downloadFile}, and record the manifest. `pull_jobs.ts` runs pulls in
 * the background with progress that HTTP streams as SSE.
 * @module
 */
import { TabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Manifest, ModelCache } from "./cache.ts";
import { type CatalogEntry, defaultCatalog } from "./catalog/catalog.ts";
import { downloadFile } from "./downloader.ts";
import type { HubClient, HubFile } from "./hub_client.ts";
import { guessFormat } from "./locate.ts";
import type { ModelId } from "./repo_id.ts";
import { selectFiles } from "./select_files.ts";
import { confirmFile } from "./verify.ts";

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

/** A catalog entry may pin hashes: the Hub's files must be those. */
function assertPinned(id: ModelId, chosen: HubFile[], entry: CatalogEntry | undefined): void {
  for (const file of chosen) {
    const pin = entry?.files.find((f) => "path" in f && f.path === file.path);
    if (pin && "path" in pin && pin.sha256 && file.sha256 && pin.sha256 !== file.sha256) {
      throw new TabAgentError("checksum_mismatch", `${id}/${file.path} on the Hub is not the catalog's pinned file`, {
        expected: pin.sha256,
        actual: file.sha256,
      });
    }
  }
}

type ManifestFile = Manifest["files"][number];

/** `file`'s manifest entry when the cache holds it already, at the same content; null when it must be downloaded. */
async function intactFile(dest: string, file: HubFile, previous: Manifest | null): Promise<ManifestFile | null> {
  const known = previous?.files.find((f) => f.path === file.path);
  const onDisk = await Deno.stat(dest).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  });
  const sameFile = known && known.size === file.size &&
    (file.sha256 ? known.sha256 === file.sha256 : known.git_oid !== undefined && known.git_oid === file.gitOid);
  // The size alone does not prove the bytes: a file changed on disk since it was hashed is re-hashed.
  return sameFile && onDisk?.isFile ? await confirmFile(dest, known, onDisk) : null;
}

/** Downloads one file of the pull (verified against the Hub's hashes) and returns its manifest entry. */
async function downloadInto(
  options: PullOptions,
  target: { commit: string; file: HubFile; dest: string },
  onState: (state: "waiting" | "downloading", bytes?: number) => void,
): Promise<ManifestFile> {
  const { hub, request } = options;
  const { file, dest } = target;
  const result = await downloadFile({
    hub,
    url: hub.resolveUrl(request.id, target.commit, file.path),
    dest,
    expected: { size: file.size, sha256: file.sha256, gitSha1: file.gitOid },
    connections: request.connections,
    signal: options.signal,
    log: options.log,
    onWait: () => onState("waiting"),
    onProgress: (bytes) => onState("downloading", bytes),
  });
  return {
    path: file.path,
    size: file.size,
    sha256: result.sha256,
    ...(file.sha256 ? {} : { git_oid: result.gitSha1 }),
    mtime_ms: (await Deno.stat(dest)).mtime?.getTime(),
  };
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
  assertPinned(request.id, chosen, entry);
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
    const intact = await intactFile(dest, file, previous);
    if (intact) {
      progress[index] = { ...progress[index], bytes: file.size, state: "done" };
      manifestFiles.push(intact);
      report();
      continue;
    }
    progress[index].state = "downloading";
    manifestFiles.push(
      await downloadInto(options, { commit: repo.commit, file, dest }, (state, bytes) => {
        progress[index].state = state;
        if (bytes !== undefined) progress[index].bytes = bytes;
        report();
      }),
    );
    progress[index] = { ...progress[index], bytes: file.size, state: "done" };
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
