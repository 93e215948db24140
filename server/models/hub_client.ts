/**
 * The Hugging Face Hub client: repository metadata and file listings through `@huggingface/hub`,
 * and the redirect-aware `fetch` every Hub request goes through. Honours `HF_ENDPOINT` and the
 * token (`HF_TOKEN`, else the one `tabagent login` stored). The token is sent to the Hub's own
 * origin only: a redirect to another host (the Hub's CDN) never carries `Authorization`.
 * @module
 */
import { listFiles, modelInfo } from "@huggingface/hub";
import { TabAgentError } from "../errors/mod.ts";
import { HUB_REQUEST_TIMEOUT_MS, MAX_FILES_PER_PULL, MAX_REDIRECTS } from "./limits.ts";
import { assertSafeRepoPath, type ModelId, RESERVED_SUFFIXES } from "./repo_id.ts";

/** The public Hub. */
export const DEFAULT_HUB_ENDPOINT = "https://huggingface.co";

/** How to reach the Hub. */
export interface HubOptions {
  /** Base URL (`HF_ENDPOINT`), no trailing slash. */
  endpoint: string;
  /** Access token (`hf_…`), or undefined for anonymous access. */
  token?: string;
}

/** One file of a repository at a commit. */
export interface HubFile {
  path: string;
  size: number;
  /** sha256 of the content for LFS/Xet files (the LFS oid). */
  sha256?: string;
  /** The git blob id (sha1 of "blob <size>\0" + content). */
  gitOid?: string;
}

/** A repository resolved to a commit. */
export interface HubRepo {
  id: ModelId;
  commit: string;
  files: HubFile[];
  pipelineTag?: string;
  gated?: string | false;
}

/** What a `resolve` URL answered with, before any bytes. */
export interface ResolvedFile {
  /** Where the bytes are (the CDN after the Hub's redirect, or the Hub itself). */
  url: string;
  /** True when `url` is on the Hub's origin and may carry the token. */
  sameOrigin: boolean;
  size: number;
  /** The Hub's ETag for the file, unquoted: sha256 for LFS files, the git blob id otherwise. */
  etag?: string;
  commit?: string;
  /** Whether the server at `url` honours `Range`. */
  ranges: boolean;
}

/** Reads `HF_ENDPOINT` and `HF_TOKEN`, falling back to a stored token. */
export function hubOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  storedToken?: string,
): HubOptions {
  const endpoint = (env.HF_ENDPOINT?.trim() || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, "");
  const token = env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim() || storedToken || undefined;
  return { endpoint, token };
}

function unquote(etag: string | null): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

function mergeSignals(signal: AbortSignal | undefined, timeoutMs: number | undefined): AbortSignal | undefined {
  const signals = [signal, timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined].filter((s) => s !== undefined);
  return signals.length ? AbortSignal.any(signals) : undefined;
}

/**
 * A `fetch` that follows redirects itself: the token goes only to `origin`, and each hop is
 * checked, so a CDN (or a hostile redirect) never sees `Authorization`.
 *
 * @example
 * ```ts
 * const hubFetch = createHubFetch({ endpoint: "https://huggingface.co", token: "hf_…" });
 * const res = await hubFetch("https://huggingface.co/api/models/Qwen/Qwen2.5-0.5B-Instruct");
 * ```
 */
export function createHubFetch(options: HubOptions): typeof fetch {
  const origin = new URL(options.endpoint).origin;
  return async (input: RequestInfo | URL, init: RequestInit = {}) => {
    let url = new URL(input instanceof Request ? input.url : String(input));
    const method = init.method ?? (input instanceof Request ? input.method : "GET");
    const baseHeaders = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers = new Headers(baseHeaders);
      if (url.origin === origin && options.token) headers.set("authorization", `Bearer ${options.token}`);
      else headers.delete("authorization");
      const response = await fetch(url, { ...init, method, headers, redirect: "manual" });
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || !location) return response;
      await response.body?.cancel();
      url = new URL(location, url);
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        throw new TabAgentError("upstream_failed", `The Hub redirected to an unsupported URL scheme ${url.protocol}`);
      }
    }
    throw new TabAgentError("upstream_failed", `More than ${MAX_REDIRECTS} redirects from the Hub`);
  };
}

/** Maps an error from `@huggingface/hub` or the network into the error family. */
export function hubError(error: unknown, what: string): TabAgentError {
  if (error instanceof TabAgentError) return error;
  if (error instanceof DOMException && error.name === "AbortError") {
    return new TabAgentError("cancelled", `${what}: cancelled`, {}, { cause: error });
  }
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return new TabAgentError("timeout", `${what}: the Hub did not answer in time`, {}, { cause: error });
  }
  const status = (error as { statusCode?: number }).statusCode;
  if (status === 401 || status === 403) {
    return new TabAgentError(
      "forbidden",
      `${what}: the Hub refused access (gated or private repository?); run 'tabagent login' or set HF_TOKEN`,
      { upstream_status: status },
      { cause: error },
    );
  }
  if (status === 404) {
    return new TabAgentError("not_found", `${what}: not found on the Hub`, { upstream_status: 404 }, { cause: error });
  }
  if (status === 429) {
    return new TabAgentError("too_many_requests", `${what}: the Hub is rate-limiting requests`, {}, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TabAgentError("upstream_failed", `${what}: ${message}`, status ? { upstream_status: status } : {}, {
    cause: error,
  });
}

/** Talks to one Hub endpoint. */
export class HubClient {
  readonly endpoint: string;
  // The token reaches @huggingface/hub only through `this.fetch` (which adds it for the Hub's own
  // origin): the library insists on an `hf_` prefix that organisation and proxy tokens lack.
  readonly #token?: string;
  readonly fetch: typeof fetch;

  constructor(options: HubOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, "");
    this.#token = options.token;
    this.fetch = createHubFetch(options);
  }

  /** True when a token will be sent. */
  get authenticated(): boolean {
    return this.#token !== undefined;
  }

  /**
   * Resolves `revision` (branch, tag or commit) of a model repository to a commit and lists every
   * file there with its size and hashes. File paths that could escape the cache folder are refused.
   */
  async repo(id: ModelId, revision = "main", signal?: AbortSignal): Promise<HubRepo> {
    const what = `Repository ${id}@${revision}`;
    const timed = (s?: AbortSignal) => {
      const merged = mergeSignals(s, HUB_REQUEST_TIMEOUT_MS);
      return ((input: RequestInfo | URL, init?: RequestInit) =>
        this.fetch(input, { ...init, signal: merged })) as typeof fetch;
    };
    let commit: string;
    let pipelineTag: string | undefined;
    let gated: string | false | undefined;
    try {
      const info = await modelInfo({
        name: id,
        revision,
        hubUrl: this.endpoint,
        additionalFields: ["sha"],
        fetch: timed(signal),
      });
      if (!info.sha || !/^[0-9a-f]{40}$/.test(info.sha)) {
        throw new TabAgentError("upstream_failed", `${what}: the Hub did not name a commit`);
      }
      commit = info.sha;
      pipelineTag = info.task;
      gated = info.gated;
    } catch (error) {
      throw hubError(error, what);
    }
    const files: HubFile[] = [];
    try {
      for await (
        const entry of listFiles({
          repo: { type: "model", name: id },
          revision: commit,
          recursive: true,
          hubUrl: this.endpoint,
          fetch: timed(signal),
        })
      ) {
        if (entry.type !== "file") continue;
        assertSafeRepoPath(entry.path, `the Hub's file list of ${id}`);
        if (
          RESERVED_SUFFIXES.some((suffix) => entry.path.endsWith(suffix)) ||
          entry.path.endsWith(".tabagent-manifest.json")
        ) {
          throw new TabAgentError(
            "bad_request",
            `Refused file name ${JSON.stringify(entry.path)} in ${id}: reserved by the cache`,
          );
        }
        if (files.length >= MAX_FILES_PER_PULL) {
          throw new TabAgentError("payload_too_large", `${what} has more than ${MAX_FILES_PER_PULL} files`);
        }
        const lfs = entry.lfs;
        files.push({
          path: entry.path,
          size: lfs?.size ?? entry.size,
          sha256: lfs?.oid && /^[0-9a-f]{64}$/.test(lfs.oid) ? lfs.oid : undefined,
          gitOid: entry.oid && /^[0-9a-f]{40}$/.test(entry.oid) && !lfs ? entry.oid : undefined,
        });
      }
    } catch (error) {
      throw hubError(error, what);
    }
    return { id, commit, files, pipelineTag, gated };
  }

  /** The `resolve` URL of a file at a commit. */
  resolveUrl(id: ModelId, commit: string, path: string): string {
    const encoded = path.split("/").map(encodeURIComponent).join("/");
    return `${this.endpoint}/${id}/resolve/${encodeURIComponent(commit)}/${encoded}`;
  }

  /**
   * Asks the Hub where a file's bytes are (HEAD on `resolve`, following redirects by hand) and reads
   * its size and ETag from the Hub's own answer (`X-Linked-Size`, `X-Linked-Etag`).
   */
  async locate(url: string, signal?: AbortSignal): Promise<ResolvedFile> {
    const origin = new URL(this.endpoint).origin;
    let current = new URL(url);
    let size: number | undefined;
    let etag: string | undefined;
    let commit: string | undefined;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers = new Headers({ "accept-encoding": "identity" });
      if (current.origin === origin && this.#token) headers.set("authorization", `Bearer ${this.#token}`);
      let response: Response;
      try {
        response = await fetch(current, {
          method: "HEAD",
          headers,
          redirect: "manual",
          signal: mergeSignals(signal, HUB_REQUEST_TIMEOUT_MS),
        });
      } catch (error) {
        throw hubError(error, `File ${url}`);
      }
      await response.body?.cancel();
      const linkedSize = response.headers.get("x-linked-size");
      if (linkedSize && size === undefined) size = Number(linkedSize);
      const linkedEtag = unquote(response.headers.get("x-linked-etag"));
      if (linkedEtag && etag === undefined) etag = linkedEtag;
      commit ??= response.headers.get("x-repo-commit") ?? undefined;
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location) {
        // The Hub's own ETag on the redirect is the LFS oid; the CDN's is not a content hash.
        etag ??= unquote(response.headers.get("etag"));
        current = new URL(location, current);
        continue;
      }
      if (!response.ok) {
        throw hubError({ statusCode: response.status, message: `HTTP ${response.status}` }, `File ${url}`);
      }
      etag ??= unquote(response.headers.get("etag"));
      size ??= Number(response.headers.get("content-length"));
      if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
        throw new TabAgentError("upstream_failed", `File ${url}: the Hub sent no usable size`);
      }
      return {
        url: current.href,
        sameOrigin: current.origin === origin,
        size,
        etag,
        commit,
        ranges: response.headers.get("accept-ranges")?.toLowerCase().includes("bytes") ?? false,
      };
    }
    throw new TabAgentError("upstream_failed", `File ${url}: more than ${MAX_REDIRECTS} redirects`);
  }

  /** Headers for a byte request to a located file: the token only on the Hub's own origin. */
  headersFor(file: ResolvedFile): Headers {
    const headers = new Headers({ "accept-encoding": "identity" });
    if (file.sameOrigin && this.#token) headers.set("authorization", `Bearer ${this.#token}`);
    return headers;
  }
}
