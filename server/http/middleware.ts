/**
 * The middleware every request passes, in order: request context (id, metrics, access log), host
 * guard (DNS rebinding), origin check and CORS, bearer token, body size limit, timeout.
 */
import type { Context, MiddlewareHandler } from "hono";
import { isLoopbackHost, MAX_REQUEST_ID_LENGTH } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Counter, Histogram } from "../metrics/mod.ts";
import { tokensEqual } from "../auth/mod.ts";
import type { HttpEnv } from "./router.ts";

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]+$/;

/** Methods that get their own metrics label; any other (invented ones included) is counted as "other". */
const METRIC_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Assigns a request id (keeping a sane incoming `X-Request-Id`), records metrics and logs access. */
export function requestContext(
  options: { log: Logger; requests: Counter; duration: Histogram },
): MiddlewareHandler<HttpEnv> {
  const { log, requests, duration } = options;
  let sequence = 0;
  const prefix = crypto.randomUUID().slice(0, 8);
  // Series are resolved once per (method, route, status) so a request costs two Map lookups.
  const series = new Map<string, { count: () => void; observe: (seconds: number) => void }>();
  const seriesFor = (method: string, route: string, status: number) => {
    const key = `${method} ${route} ${status}`;
    let found = series.get(key);
    if (!found) {
      found = {
        count: requests.bind({ method, route, status: String(status) }),
        observe: duration.bind({ method, route }),
      };
      series.set(key, found);
    }
    return found;
  };
  return async (c, next) => {
    const began = performance.now();
    const incoming = c.req.raw.headers.get("x-request-id");
    const requestId = incoming && incoming.length <= MAX_REQUEST_ID_LENGTH && REQUEST_ID_PATTERN.test(incoming)
      ? incoming
      : `${prefix}-${(++sequence).toString(36)}`;
    c.set("requestId", requestId);
    c.set("log", log);
    // Set before the handler runs so it lands in the response as built, not by copying it after.
    c.header("x-request-id", requestId);
    await next();
    // Handlers that return a Response of their own (files, streams) did not get it; add it there.
    if (!c.res.headers.has("x-request-id")) c.header("x-request-id", requestId);
    const status = c.res.status;
    // "/*" is where middleware-only answers (rejections, static files, 404s) land. Methods and
    // routes a client invents fold into "other": labels must stay a bounded set, or anyone who can
    // reach the port (no token needed) grows /metrics without end.
    const route = c.req.routePath === "/*" ? "other" : c.req.routePath;
    const method = METRIC_METHODS.has(c.req.method) ? c.req.method : "other";
    const seconds = (performance.now() - began) / 1000;
    const { count, observe } = seriesFor(method, route, status);
    count();
    observe(seconds);
    if (log.enabled("debug")) {
      log.debug("request", {
        request_id: requestId,
        method: c.req.method,
        path: c.req.path,
        status,
        ms: seconds * 1000,
      });
    }
  };
}

function hostName(hostHeader: string): string {
  // "[::1]:8765" → "[::1]"; "localhost:8765" → "localhost"
  if (hostHeader.startsWith("[")) return hostHeader.slice(0, hostHeader.indexOf("]") + 1);
  const colon = hostHeader.indexOf(":");
  return (colon === -1 ? hostHeader : hostHeader.slice(0, colon)).toLowerCase();
}

/**
 * Rejects requests whose `Host` is neither a loopback name nor configured: a page on an attacker's
 * domain that rebinds its DNS to 127.0.0.1 still sends its own name as `Host`.
 */
export function hostGuard(options: { allowedHosts: string[]; bindHost: string }): MiddlewareHandler<HttpEnv> {
  const allowed = new Set(options.allowedHosts.map((h) => h.toLowerCase()));
  if (!isLoopbackHost(options.bindHost) && options.bindHost !== "0.0.0.0" && options.bindHost !== "::") {
    allowed.add(options.bindHost.toLowerCase());
  }
  // Host headers repeat (one or two per client); remember the verdicts, within a bound.
  const verdicts = new Map<string, boolean>();
  const isAllowed = (name: string) => {
    let verdict = verdicts.get(name);
    if (verdict === undefined) {
      verdict = isLoopbackHost(name) || allowed.has(name);
      if (verdicts.size < 1024) verdicts.set(name, verdict);
    }
    return verdict;
  };
  return async (c, next) => {
    const header = c.req.header("host");
    const name = header ? hostName(header) : "";
    if (!name || !isAllowed(name)) {
      throw new TabAgentError("forbidden_host", `Host '${header ?? ""}' is not allowed; add it with --allowed-host`);
    }
    await next();
  };
}

const CORS_ALLOW_HEADERS = "authorization, content-type, x-request-id, last-event-id, range";
const CORS_EXPOSE_HEADERS = "x-request-id, content-range, content-length, accept-ranges, etag";

/**
 * CORS for allowed origins only. A request that carries any other `Origin` (except the server's own)
 * is refused with 403, as Ollama does, so a web page cannot even trigger side effects blind.
 */
export function originGuard(options: { allowedOrigins: string[] }): MiddlewareHandler<HttpEnv> {
  const allowed = new Set(options.allowedOrigins);
  const isSelf = (c: Context<HttpEnv>, origin: string) => {
    const host = c.req.header("host");
    return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
  };
  return async (c, next) => {
    const origin = c.req.header("origin");
    if (origin === undefined) return await next();
    if (!allowed.has(origin)) {
      if (isSelf(c, origin)) return await next();
      throw new TabAgentError("forbidden", `Origin '${origin}' is not allowed; add it with --origin`);
    }
    if (c.req.method === "OPTIONS" && c.req.header("access-control-request-method")) {
      return new Response(null, {
        status: 204,
        headers: {
          "access-control-allow-origin": origin,
          "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
          "access-control-allow-headers": CORS_ALLOW_HEADERS,
          "access-control-max-age": "600",
          "vary": "origin",
        },
      });
    }
    await next();
    c.res.headers.set("access-control-allow-origin", origin);
    c.res.headers.set("access-control-expose-headers", CORS_EXPOSE_HEADERS);
    c.res.headers.append("vary", "origin");
  };
}

/** True for paths that anyone on the machine may read: health, API docs, static files. */
export function isPublicPath(path: string): boolean {
  if (path === "/v1/health") return true;
  if (path === "/metrics" || path.startsWith("/metrics/")) return false;
  // Ollama's API (`/api/*`; the docs live at `/api-doc`) needs the token like `/v1`.
  if (path === "/api" || path.startsWith("/api/")) return false;
  return !path.startsWith("/v1/") && path !== "/v1";
}

/**
 * Requires `Authorization: Bearer <token>` on every non-public path. `anonymousRoutes` ("METHOD
 * /path" entries, from `--allow-anonymous-local`) are let through without one.
 */
export function bearerAuth(
  options: { token: string | null; anonymousRoutes?: readonly string[] },
): MiddlewareHandler<HttpEnv> {
  const { token } = options;
  const anonymous = new Set(options.anonymousRoutes ?? []);
  return async (c, next) => {
    if (token !== null && !isPublicPath(c.req.path) && !anonymous.has(`${c.req.method} ${c.req.path}`)) {
      const header = c.req.header("authorization");
      if (!header) {
        throw new TabAgentError(
          "unauthorized",
          "Missing 'Authorization: Bearer <token>'; run 'tabagent token' to see it",
        );
      }
      const match = /^Bearer\s+(.+)$/i.exec(header);
      if (!match || !tokensEqual(match[1].trim(), token)) {
        throw new TabAgentError("unauthorized", "The bearer token is not valid for this server");
      }
    }
    await next();
  };
}

/**
 * Refuses bodies over `maxBytes` (or the path's own limit in `routes`) with 413: by
 * `Content-Length` before reading, and by counting bytes for chunked bodies, so a lying client
 * cannot stream past the limit either.
 */
export function bodyLimit(
  options: { maxBytes: number; routes?: ReadonlyMap<string, number> },
): MiddlewareHandler<HttpEnv> {
  const tooLarge = (maxBytes: number) =>
    new TabAgentError("payload_too_large", `Request body exceeds the limit of ${maxBytes} bytes`, { limit: maxBytes });
  return async (c, next) => {
    const body = c.req.raw.body;
    if (body === null) return await next();
    const maxBytes = options.routes?.get(c.req.path) ?? options.maxBytes;
    const length = c.req.header("content-length");
    if (length !== undefined) {
      if (Number(length) > maxBytes) throw tooLarge(maxBytes);
      return await next();
    }
    let seen = 0;
    let exceeded = false;
    const counted = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > maxBytes) {
            exceeded = true;
            controller.error(tooLarge(maxBytes));
          } else controller.enqueue(chunk);
        },
      }),
    );
    c.req.raw = new Request(c.req.raw, { body: counted, duplex: "half" } as RequestInit);
    await next();
    // The handler saw a broken body (usually reported as malformed JSON): say what really happened.
    if (exceeded) throw tooLarge(maxBytes);
  };
}

/**
 * Answers 504 when a handler takes longer than `ms` to produce its response. A streaming response
 * counts as produced once its headers are ready, so SSE streams are not cut.
 *
 * One shared ticker checks the deadlines instead of a timer per request: a timer per request was
 * the largest single cost of a `/v1/health` call in a profile. Deadlines are therefore enforced to
 * within a tick (a tenth of `ms`, at most one second).
 */
export function requestTimeout(options: { ms: number }): MiddlewareHandler<HttpEnv> {
  const { ms } = options;
  const tickMs = Math.min(1000, Math.max(10, Math.floor(ms / 10)));
  const inFlight = new Set<{ deadline: number; reject: (error: TabAgentError) => void }>();
  let ticker: ReturnType<typeof setInterval> | undefined;
  const sweep = () => {
    const now = performance.now();
    for (const entry of inFlight) {
      if (entry.deadline <= now) {
        inFlight.delete(entry);
        entry.reject(new TabAgentError("timeout", `The request did not complete within ${ms} ms`));
      }
    }
    if (inFlight.size === 0) {
      clearInterval(ticker);
      ticker = undefined;
    }
  };
  return (_c, next) =>
    new Promise<void>((resolve, reject) => {
      const entry = { deadline: performance.now() + ms, reject };
      inFlight.add(entry);
      if (ticker === undefined) {
        ticker = setInterval(sweep, tickMs);
        // Never keep the process alive just to time requests out.
        Deno.unrefTimer(ticker as unknown as number);
      }
      next().then(resolve, reject).finally(() => inFlight.delete(entry));
    });
}
