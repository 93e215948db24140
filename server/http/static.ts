import type { Context } from "hono";
import { TabAgentError } from "../errors/mod.ts";
import type { HttpEnv } from "./router.ts";

/** Content types by file extension for what the server ships. */
export const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
  wasm: "application/wasm",
  woff2: "font/woff2",
};

/** The content type for a file name. */
export function contentTypeFor(name: string): string {
  const ext = name.slice(name.lastIndexOf(".") + 1).toLowerCase();
  return Object.hasOwn(CONTENT_TYPES, ext) ? CONTENT_TYPES[ext] : "application/octet-stream";
}

/**
 * Resolves a URL path inside `root`, refusing anything that would leave it (`..`, encoded
 * separators, NUL). Returns null for a path that cannot be a file here.
 */
export function safeJoin(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null; // malformed percent-encoding cannot name a file we serve
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return null;
  const parts = decoded.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) return null;
  return [root.replace(/\/+$/, ""), ...parts].join("/");
}

/**
 * Serves files under `root` for GET/HEAD with ETag and `If-None-Match`; `/` maps to `index.html`.
 * Falls through (`next`) when nothing matches so the 404 problem applies.
 */
export function serveStatic(options: { root: string; cacheSeconds?: number }) {
  const { root } = options;
  const cacheControl = `public, max-age=${options.cacheSeconds ?? 0}, must-revalidate`;
  return async (c: Context<HttpEnv>, next: () => Promise<void>) => {
    if (c.req.method !== "GET" && c.req.method !== "HEAD") return await next();
    let path = safeJoin(root, c.req.path);
    if (path === null) throw new TabAgentError("bad_request", "Invalid path");
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
      if (info.isDirectory) {
        path = `${path}/index.html`;
        info = await Deno.stat(path);
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return await next();
      throw error;
    }
    if (!info.isFile) return await next();
    const etag = `W/"${info.size.toString(16)}-${(info.mtime?.getTime() ?? 0).toString(16)}"`;
    const headers = new Headers({
      "content-type": contentTypeFor(path),
      "etag": etag,
      "cache-control": cacheControl,
      "x-content-type-options": "nosniff",
    });
    if (c.req.header("if-none-match") === etag) return new Response(null, { status: 304, headers });
    headers.set("content-length", String(info.size));
    if (c.req.method === "HEAD") return new Response(null, { status: 200, headers });
    const file = await Deno.open(path, { read: true });
    return new Response(file.readable, { status: 200, headers });
  };
}
