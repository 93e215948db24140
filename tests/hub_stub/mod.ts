/**
 * A loopback server that speaks the Hugging Face Hub's protocol, for tests and benchmarks without
 * the internet: model info (`/api/models/{repo}[/revision/{rev}]`), the tree listing
 * `@huggingface/hub` reads, `resolve` with `X-Repo-Commit`, `X-Linked-Size`, `X-Linked-Etag` and a
 * 302 to a second listener (the "CDN", another origin) for LFS files, Range on both, `whoami-v2`,
 * and fault injection: 500s, a connection dropped mid-body, a slow (per-connection capped) server,
 * wrong bytes. It counts the bytes it serves per file, so tests can tell what was fetched twice.
 *
 * @example
 * ```ts
 * await using hub = await startHubStub({ repos: [{ id: "org/tiny", files: [{ path: "m.gguf", content, lfs: true }] }] });
 * Deno.env.set("HF_ENDPOINT", hub.hubUrl);
 * ```
 * @module
 */
import { createHash } from "node:crypto";

/** A file's bytes: in memory, or a file on disk (for the 1 GiB benchmark). */
export type StubContent = Uint8Array | { diskPath: string; size: number; sha256?: string };

/** One file of a stub repository. */
export interface StubFile {
  path: string;
  content: StubContent;
  /** Stored in LFS: served from the CDN through a redirect, with the sha256 as ETag. */
  lfs?: boolean;
}

/** One stub repository. */
export interface StubRepo {
  id: string;
  /** 40 hex digits; derived from the id when absent. */
  commit?: string;
  files: StubFile[];
  pipelineTag?: string;
  /** Requires the token on every request. */
  private?: boolean;
}

/** Faults to inject into byte responses (resolve on the Hub and the CDN). */
export interface StubFaults {
  /** Answer the next N byte requests with 500. */
  fail500?: number;
  /** Drop the connection after this many body bytes … */
  dropAfterBytes?: number;
  /** … for the next N byte responses. */
  dropTimes?: number;
  /** Cap each response at this many bytes per second (as CDNs cap a connection). */
  bytesPerSecond?: number;
  /** Flip bits in every body served. */
  corrupt?: boolean;
}

/** A running stub. */
export interface HubStub extends AsyncDisposable {
  hubUrl: string;
  cdnUrl: string;
  /** The token private repositories and whoami accept. */
  token: string;
  /** Body bytes served per file path (Hub and CDN together). */
  served: Map<string, number>;
  /** Byte requests (GET with or without Range) per file path. */
  requests: Map<string, number>;
  /** Every `Authorization` header the CDN received (it must receive none). */
  cdnAuthorizations: string[];
  faults: StubFaults;
  /** Commit of a repository. */
  commitOf(id: string): string;
  /** sha256 of a file. */
  sha256Of(id: string, path: string): string;
  resetCounters(): void;
  /**
   * Holds every byte response started from now on after `bytes` body bytes, until the returned
   * function is called: a download stays part-way for as long as a test needs to look at it.
   */
  holdAfter(bytes: number): () => void;
  close(): Promise<void>;
}

interface Prepared {
  file: StubFile;
  size: number;
  sha256: string;
  gitOid: string;
}

async function digest(content: StubContent): Promise<{ size: number; sha256: string; gitOid: string }> {
  if (content instanceof Uint8Array) {
    const sha256 = createHash("sha256").update(content).digest("hex");
    const gitOid = createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
    return { size: content.length, sha256, gitOid };
  }
  const sha = createHash("sha256");
  const git = createHash("sha1").update(`blob ${content.size}\0`);
  if (content.sha256) return { size: content.size, sha256: content.sha256, gitOid: "0".repeat(40) };
  const file = await Deno.open(content.diskPath);
  const buffer = new Uint8Array(4 << 20);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    sha.update(buffer.subarray(0, n));
    git.update(buffer.subarray(0, n));
  }
  file.close();
  return { size: content.size, sha256: sha.digest("hex"), gitOid: git.digest("hex") };
}

function commitFor(id: string): string {
  return createHash("sha1").update(`commit ${id}`).digest("hex");
}

function parseRange(header: string | null, size: number): { start: number; end: number } | null | "invalid" {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return "invalid";
  let start: number;
  let end: number;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start > end || start >= size) return "invalid";
  return { start, end };
}

const CHUNK = 256 * 1024;

/** Starts the stub on two loopback ports (Hub and CDN). */
export async function startHubStub(
  options: {
    repos: StubRepo[];
    token?: string; /** Serve `/_stub/faults` and `/_stub/stats` (separate process). */
    control?: boolean;
  },
): Promise<HubStub> {
  const token = options.token ?? "hf_stubtoken0123456789abcdefghijklmnop";
  const repos = new Map<string, { repo: StubRepo; commit: string; files: Map<string, Prepared> }>();
  const bySha = new Map<string, { id: string; prepared: Prepared }>();
  for (const repo of options.repos) {
    const files = new Map<string, Prepared>();
    for (const file of repo.files) {
      const info = await digest(file.content);
      const prepared = { file, ...info };
      files.set(file.path, prepared);
      bySha.set(info.sha256, { id: repo.id, prepared });
    }
    repos.set(repo.id, { repo, commit: repo.commit ?? commitFor(repo.id), files });
  }
  const served = new Map<string, number>();
  const requests = new Map<string, number>();
  const cdnAuthorizations: string[] = [];
  const faults: StubFaults = {};
  const count = (map: Map<string, number>, key: string, n: number) => map.set(key, (map.get(key) ?? 0) + n);
  let gate: { bytes: number; open: boolean; opened: PromiseWithResolvers<void> } | null = null;

  function body(prepared: Prepared, start: number, end: number): ReadableStream<Uint8Array> {
    const { content } = prepared.file;
    const dropAt = faults.dropTimes && faults.dropTimes > 0 ? (faults.dropTimes--, faults.dropAfterBytes ?? 0) : -1;
    const rate = faults.bytesPerSecond;
    const corrupt = faults.corrupt;
    const held = gate;
    let position = start;
    let sent = 0;
    let file: Deno.FsFile | undefined;
    const began = performance.now();
    return new ReadableStream<Uint8Array>({
      async start() {
        if (!(content instanceof Uint8Array)) {
          file = await Deno.open(content.diskPath);
          await file.seek(start, Deno.SeekMode.Start);
        }
      },
      async pull(controller) {
        if (position > end) {
          file?.close();
          file = undefined;
          controller.close();
          return;
        }
        let want = Math.min(rate ? Math.max(16384, Math.floor(rate / 20)) : CHUNK * 4, end + 1 - position);
        if (held && !held.open) {
          if (sent >= held.bytes) await held.opened.promise;
          else want = Math.min(want, held.bytes - sent);
        }
        if (dropAt >= 0) {
          if (sent >= dropAt) {
            file?.close();
            file = undefined;
            // Ending short of Content-Length makes the server drop the connection mid-body.
            controller.close();
            return;
          }
          want = Math.min(want, dropAt - sent);
        }
        let chunk: Uint8Array;
        if (content instanceof Uint8Array) {
          chunk = content.slice(position, position + want);
        } else {
          chunk = new Uint8Array(want);
          let got = 0;
          while (got < want) {
            const n = await file!.read(chunk.subarray(got));
            if (n === null) break;
            got += n;
          }
          chunk = chunk.subarray(0, got);
        }
        if (corrupt && chunk.length > 0) chunk[0] ^= 0xff;
        position += chunk.length;
        sent += chunk.length;
        count(served, prepared.file.path, chunk.length);
        controller.enqueue(chunk);
        if (rate) {
          const due = began + (sent / rate) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
      },
      cancel() {
        file?.close();
        file = undefined;
      },
    });
  }

  function serveBytes(request: Request, prepared: Prepared, headers: Headers): Response {
    headers.set("accept-ranges", "bytes");
    if (request.method === "HEAD") {
      headers.set("content-length", String(prepared.size));
      return new Response(null, { status: 200, headers });
    }
    count(requests, prepared.file.path, 1);
    if (faults.fail500 && faults.fail500 > 0) {
      faults.fail500--;
      return new Response("stub: injected failure", { status: 500 });
    }
    const range = parseRange(request.headers.get("range"), prepared.size);
    if (range === "invalid") {
      headers.set("content-range", `bytes */${prepared.size}`);
      return new Response(null, { status: 416, headers });
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? prepared.size - 1;
    headers.set("content-length", String(end - start + 1));
    if (range) headers.set("content-range", `bytes ${start}-${end}/${prepared.size}`);
    if (prepared.size === 0) return new Response(null, { status: 200, headers });
    return new Response(body(prepared, start, end), { status: range ? 206 : 200, headers });
  }

  const notFound = (code: string, message: string) =>
    new Response(JSON.stringify({ error: message }), {
      status: 404,
      headers: { "content-type": "application/json", "x-error-code": code },
    });

  const cdnServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const url = new URL(request.url);
    const auth = request.headers.get("authorization");
    if (auth) cdnAuthorizations.push(auth);
    const entry = bySha.get(url.pathname.slice(1));
    if (!entry) return new Response("no such object", { status: 404 });
    // S3-style ETag: not the content hash, so clients must take the hash from the Hub.
    const headers = new Headers({ etag: `"${entry.prepared.sha256.slice(0, 32)}-cdn"` });
    return serveBytes(request, entry.prepared, headers);
  });
  const cdnUrl = `http://127.0.0.1:${cdnServer.addr.port}`;

  function authorized(request: Request, repo: StubRepo): boolean {
    return !repo.private || request.headers.get("authorization") === `Bearer ${token}`;
  }

  function repoFromPath(parts: string[]): { id: string; rest: string[] } | null {
    if (parts.length < 2) return null;
    return { id: `${parts[0]}/${parts[1]}`, rest: parts.slice(2) };
  }

  const hubServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const url = new URL(request.url);
    if (options.control && url.pathname === "/_stub/faults" && request.method === "POST") {
      return request.json().then((body: StubFaults) => {
        for (const key of Object.keys(faults) as (keyof StubFaults)[]) delete faults[key];
        Object.assign(faults, body);
        return Response.json(faults);
      });
    }
    if (options.control && url.pathname === "/_stub/stats") {
      return Response.json({ served: Object.fromEntries(served), requests: Object.fromEntries(requests) });
    }
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] === "api" && parts[1] === "whoami-v2") {
      return request.headers.get("authorization") === `Bearer ${token}`
        ? Response.json({ type: "user", name: "stub-user" })
        : Response.json({ error: "Invalid credentials" }, { status: 401 });
    }
    if (parts[0] === "api" && parts[1] === "models") {
      const target = repoFromPath(parts.slice(2));
      const entry = target && repos.get(target.id);
      if (!target || !entry) return notFound("RepoNotFound", "Repository not found");
      if (!authorized(request, entry.repo)) return Response.json({ error: "Unauthorized" }, { status: 401 });
      const [kind, revision, ...path] = target.rest;
      if (kind === undefined || kind === "revision") {
        if (revision && !["main", "HEAD", entry.commit].includes(revision)) {
          return notFound("RevisionNotFound", "Invalid rev id");
        }
        return Response.json({
          _id: `stub-${target.id}`,
          id: target.id,
          sha: entry.commit,
          private: entry.repo.private ?? false,
          gated: false,
          disabled: false,
          pipeline_tag: entry.repo.pipelineTag,
          downloads: 0,
          likes: 0,
          lastModified: "2024-09-19T00:00:00.000Z",
          siblings: [...entry.files.keys()].map((rfilename) => ({ rfilename })),
        });
      }
      if (kind === "tree") {
        if (revision && !["main", "HEAD", entry.commit].includes(revision)) {
          return notFound("RevisionNotFound", "Invalid rev id");
        }
        const prefix = path.length ? path.join("/") + "/" : "";
        const recursive = url.searchParams.get("recursive") === "true";
        const out: unknown[] = [];
        const dirs = new Set<string>();
        for (const prepared of entry.files.values()) {
          const p = prepared.file.path;
          if (!p.startsWith(prefix)) continue;
          const rest = p.slice(prefix.length);
          const slash = rest.indexOf("/");
          if (slash !== -1) {
            const dir = prefix + rest.slice(0, slash);
            if (!dirs.has(dir)) {
              dirs.add(dir);
              out.push({ type: "directory", oid: "0".repeat(40), size: 0, path: dir });
            }
            if (!recursive) continue;
          }
          out.push({
            type: "file",
            oid: prepared.file.lfs ? createHash("sha1").update(`pointer ${p}`).digest("hex") : prepared.gitOid,
            size: prepared.size,
            path: p,
            ...(prepared.file.lfs ? { lfs: { oid: prepared.sha256, size: prepared.size, pointerSize: 134 } } : {}),
          });
        }
        return Response.json(out);
      }
      return notFound("EntryNotFound", "Unknown API");
    }
    const target = repoFromPath(parts);
    if (target && target.rest[0] === "resolve") {
      const entry = repos.get(target.id);
      if (!entry) return notFound("RepoNotFound", "Repository not found");
      if (!authorized(request, entry.repo)) return Response.json({ error: "Unauthorized" }, { status: 401 });
      const [, revision, ...path] = target.rest;
      if (!["main", "HEAD", entry.commit].includes(revision)) return notFound("RevisionNotFound", "Invalid rev id");
      const prepared = entry.files.get(path.join("/"));
      if (!prepared) return notFound("EntryNotFound", "Entry not found");
      const headers = new Headers({ "x-repo-commit": entry.commit });
      if (prepared.file.lfs) {
        headers.set("x-linked-size", String(prepared.size));
        headers.set("x-linked-etag", `"${prepared.sha256}"`);
        headers.set("etag", `"${prepared.sha256}"`);
        headers.set("location", `${cdnUrl}/${prepared.sha256}?file=${encodeURIComponent(prepared.file.path)}`);
        headers.set("content-length", "0");
        return new Response(null, { status: 302, headers });
      }
      headers.set("etag", `"${prepared.gitOid}"`);
      return serveBytes(request, prepared, headers);
    }
    return notFound("EntryNotFound", "Not found");
  });
  const hubUrl = `http://127.0.0.1:${hubServer.addr.port}`;

  const close = async () => {
    // A held response would keep shutdown waiting for ever.
    if (gate) gate.open = true;
    gate?.opened.resolve();
    await Promise.all([hubServer.shutdown(), cdnServer.shutdown()]);
  };
  return {
    hubUrl,
    cdnUrl,
    token,
    served,
    requests,
    cdnAuthorizations,
    faults,
    commitOf: (id) => repos.get(id)!.commit,
    sha256Of: (id, path) => repos.get(id)!.files.get(path)!.sha256,
    resetCounters() {
      served.clear();
      requests.clear();
      cdnAuthorizations.length = 0;
    },
    holdAfter(bytes) {
      const current = { bytes, open: false, opened: Promise.withResolvers<void>() };
      gate = current;
      return () => {
        current.open = true;
        current.opened.resolve();
        if (gate === current) gate = null;
      };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Deterministic pseudo-random bytes (xorshift), so tests need no fixtures on disk. */
export function pseudoRandomBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
