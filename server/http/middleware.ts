/**
 * The middleware every request passes, in order: the request context (id, CORS headers, metrics,
 * access log) and the request guard (Host against DNS rebinding, Origin, bearer token, body size
 * limit, timeout). The checks share one layer rather than one each: a Hono layer costs a promise,
 * closures and a turn of the microtask queue per request whatever it does, and a `/v1/health`
 * call used to pass six.
 */
import type { Context, MiddlewareHandler } from "hono";
import { isLoopbackHost, MAX_REQUEST_ID_LENGTH } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Counter, Histogram } from "../metrics/mod.ts";
import { tokensEqual } from "../auth/mod.ts";
import { InFlight } from "../inflight/mod.ts";
import type { HttpEnv } from "./router.ts";

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]+$/;

/** Methods that get their own metrics label; any other (invented ones included) is counted as "other". */
const METRIC_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

const CORS_ALLOW_HEADERS = "authorization, content-type, x-request-id, last-event-id, range";
const CORS_EXPOSE_HEADERS = "x-request-id, content-range, content-length, accept-ranges, etag";

/** One request's metric series: its counter and its latency histogram, bound to their labels. */
interface Series {
  count: () => void;
  observe: (seconds: number) => void;
}

/**
 * The bookkeeping every request gets, whichever path serves it (the Hono middleware or the health
 * fast path in `_fast_health.ts`): its request id, its metrics and its access log line.
 */
export class RequestRecorder {
  readonly log: Logger;
  #requests: Counter;
  #duration: Histogram;
  #sequence = 0;
  #prefix = crypto.randomUUID().slice(0, 8);
  // Series are resolved once per (route, method, status), so a request costs three Map lookups.
  #series = new Map<string, Map<string, Map<number, Series>>>();

  constructor(options: { log: Logger; requests: Counter; duration: Histogram }) {
    this.log = options.log;
    this.#requests = options.requests;
    this.#duration = options.duration;
  }

  /** The request's id: a sane incoming `X-Request-Id`, or a new one. */
  requestId(incoming: string | null): string {
    return incoming && incoming.length <= MAX_REQUEST_ID_LENGTH && REQUEST_ID_PATTERN.test(incoming)
      ? incoming
      : `${this.#prefix}-${(++this.#sequence).toString(36)}`;
  }

  /**
   * Counts a finished request and logs it at debug level. `route` is the matched route's pattern;
   * "/*" (where middleware-only answers land: refusals, static files, 404s) and methods a client
   * invents fold into "other": labels must stay a bounded set, or anyone who can reach the port
   * (no token needed) grows /metrics without end.
   */
  record(
    request: { method: string; route: string; path: string; id: string; began: number },
    status: number,
  ): void {
    const route = request.route === "/*" ? "other" : request.route;
    const method = METRIC_METHODS.has(request.method) ? request.method : "other";
    const seconds = (performance.now() - request.began) / 1000;
    const { count, observe } = this.#seriesFor(method, route, status);
    count();
    observe(seconds);
    if (this.log.enabled("debug")) {
      this.log.debug("request", {
        request_id: request.id,
        method: request.method,
        path: request.path,
        status,
        ms: seconds * 1000,
      });
    }
  }

  #seriesFor(method: string, route: string, status: number): Series {
    let byMethod = this.#series.get(route);
    if (!byMethod) this.#series.set(route, byMethod = new Map());
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, byStatus = new Map());
    let found = byStatus.get(status);
    if (!found) {
      found = {
        count: this.#requests.bind({ method, route, status: String(status) }),
        observe: this.#duration.bind({ method, route }),
      };
      byStatus.set(status, found);
    }
    return found;
  }
}

/** Adds the CORS headers an allowed origin's response carries to `headers` (mutable ones). */
export function addCorsHeaders(headers: Headers, origin: string): void {
  headers.set("access-control-allow-origin", origin);
  headers.set("access-control-expose-headers", CORS_EXPOSE_HEADERS);
  headers.append("vary", "origin");
}

/**
 * Assigns a request id (keeping a sane incoming `X-Request-Id`), records metrics and logs access.
 * Once the response is built, whoever built it (a handler, a guard's refusal, the error handler,
 * the Ollama error shape), it adds the `X-Request-Id` header and, for an origin the guard let
 * through, the CORS headers.
 *
 * Headers are added to the response once it is built, not handed to Hono to build it with: Deno
 * sends a `200` whose only header is `content-type` on its fast path, while a response made with
 * more headers goes through a native response object, which cost ten times as much to create in a
 * microbenchmark. Adding headers afterwards is cheap.
 */
export function requestContext(
  options: { log: Logger; requests: Counter; duration: Histogram } | RequestRecorder,
): MiddlewareHandler<HttpEnv> {
  const recorder = options instanceof RequestRecorder ? options : new RequestRecorder(options);
  const log = recorder.log;
  return async (c, next) => {
    const began = performance.now();
    const requestId = recorder.requestId(c.req.raw.headers.get("x-request-id"));
    c.set("requestId", requestId);
    c.set("log", log);
    await next();
    let res = c.res;
    // A handler may send an id of its own (problem documents carry this one already).
    if (!res.headers.has("x-request-id")) res = setHeader(c, res, "x-request-id", requestId);
    const corsOrigin = c.get("corsOrigin");
    if (corsOrigin !== undefined) {
      res = setHeader(c, res, "access-control-allow-origin", corsOrigin);
      addCorsHeaders(res.headers, corsOrigin);
    }
    recorder.record(
      { method: c.req.method, route: c.req.routePath, path: c.req.path, id: requestId, began },
      res.status,
    );
  };
}

/** Sets a header on `res`, or on a copy when its headers are immutable; returns the one sent. */
function setHeader(c: Context<HttpEnv>, res: Response, name: string, value: string): Response {
  try {
    res.headers.set(name, value);
    return res;
  } catch (error) {
    // Immutable headers (a response from fetch()): Hono copies the response and sets it there.
    if (!(error instanceof TypeError)) throw error;
    c.header(name, value);
    return c.res;
  }
}

function hostName(hostHeader: string): string {
  // "[::1]:8765" → "[::1]"; "localhost:8765" → "localhost"
  if (hostHeader.startsWith("[")) return hostHeader.slice(0, hostHeader.indexOf("]") + 1);
  const colon = hostHeader.indexOf(":");
  return (colon === -1 ? hostHeader : hostHeader.slice(0, colon)).toLowerCase();
}

/** True for paths that anyone on the machine may read: health, API docs, static files. */
export function isPublicPath(path: string): boolean {
  if (path === "/v1/health") return true;
  if (path === "/metrics" || path.startsWith("/metrics/")) return false;
  // Ollama's API (`/api/*`; the docs live at `/api-doc`) needs the token like `/v1`.
  if (path === "/api" || path.startsWith("/api/")) return false;
  return !path.startsWith("/v1/") && path !== "/v1";
}

/** What the request guard enforces. */
export interface RequestGuardOptions {
  /** Host names allowed besides the loopback ones. */
  allowedHosts: string[];
  /** The address the server listens on; a specific non-loopback one is an allowed Host too. */
  bindHost: string;
  /** Origins that get CORS; any other `Origin` but the server's own is refused. */
  allowedOrigins: string[];
  /** The bearer token; null turns the token check off. */
  token: string | null;
  /** "METHOD /path" routes served without the token (`--allow-anonymous-local`). */
  anonymousRoutes?: readonly string[];
  maxBodyBytes: number;
  /** Paths with a body limit of their own. */
  bodyLimits?: ReadonlyMap<string, number>;
  timeoutMs: number;
}

/**
 * Checks every request, in this order:
 * 1. `Host` must be a loopback name or configured: a page on an attacker's domain that rebinds its
 *    DNS to 127.0.0.1 still sends its own name as `Host`.
 * 2. A request that carries an `Origin` other than the allowed ones (or the server's own) is
 *    refused with 403, as Ollama does, so a web page cannot even trigger side effects blind. An
 *    allowed origin's preflight is answered here; {@link requestContext} adds its CORS headers.
 * 3. `Authorization: Bearer <token>` on every non-public path, except the `anonymousRoutes`.
 * 4. A body over `maxBodyBytes` (or the path's own limit) is refused with 413: by
 *    `Content-Length` before reading, and by counting bytes for chunked bodies, so a lying client
 *    cannot stream past the limit either.
 * 5. A handler that takes longer than `timeoutMs` to produce its response gets 504. A streaming
 *    response counts as produced once its headers are ready, so SSE streams are not cut.
 */
export function requestGuard(options: RequestGuardOptions | RequestAdmission): MiddlewareHandler<HttpEnv> {
  const admission = options instanceof RequestAdmission ? options : new RequestAdmission(options);
  const countBody = bodyCounter(admission.options);
  const inTime = deadlines(admission.options.timeoutMs);
  // Not async: Hono awaits what a layer returns, and an async function here would add a promise
  // and a turn of the microtask queue to every request for nothing.
  return (c, next) => {
    const headers = c.req.raw.headers;
    const corsOrigin = admission.origin(headers);
    if (corsOrigin !== undefined) {
      c.set("corsOrigin", corsOrigin);
      if (c.req.method === "OPTIONS" && headers.get("access-control-request-method")) return preflight();
    }
    admission.authorize(c.req.method, c.req.path, headers);
    const counted = countBody(c);
    const done = inTime(next());
    if (counted === null) return done;
    // The handler saw a broken body (usually reported as malformed JSON): say what really happened.
    return done.then(() => {
      if (counted.exceeded) throw tooLarge(counted.limit);
    });
  };
}

/**
 * The request guard's checks on a request's head (steps 1 to 3 of {@link requestGuard}), apart
 * from Hono so that the health fast path runs the very same code. Each check throws the
 * {@link TabAgentError} the client gets.
 */
export class RequestAdmission {
  readonly options: RequestGuardOptions;
  #isAllowedHost: (hostHeader: string) => boolean;
  #allowedOrigins: Set<string>;
  #token: string | null;
  #anonymous: Set<string>;

  constructor(options: RequestGuardOptions) {
    this.options = options;
    this.#isAllowedHost = hostCheck(options);
    this.#allowedOrigins = new Set(options.allowedOrigins);
    this.#token = options.token;
    this.#anonymous = new Set(options.anonymousRoutes ?? []);
  }

  /**
   * Checks `Host` (DNS rebinding) and `Origin`. Returns the origin whose response gets CORS
   * headers, or undefined (no `Origin`, or the server's own); throws for a refused one.
   */
  origin(headers: Headers): string | undefined {
    const host = headers.get("host");
    if (host === null || !this.#isAllowedHost(host)) {
      throw new TabAgentError("forbidden_host", `Host '${host ?? ""}' is not allowed; add it with --allowed-host`);
    }
    const origin = headers.get("origin");
    if (origin === null) return undefined;
    if (this.#allowedOrigins.has(origin)) return origin;
    if (origin !== `http://${host}` && origin !== `https://${host}`) {
      throw new TabAgentError("forbidden", `Origin '${origin}' is not allowed; add it with --origin`);
    }
    return undefined;
  }

  /** Checks the bearer token on every non-public path but the anonymous routes. */
  authorize(method: string, path: string, headers: Headers): void {
    const token = this.#token;
    if (token === null || isPublicPath(path) || this.#anonymous.has(`${method} ${path}`)) return;
    const header = headers.get("authorization");
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
}

function hostCheck(options: { allowedHosts: string[]; bindHost: string }): (hostHeader: string) => boolean {
  const allowed = new Set(options.allowedHosts.map((h) => h.toLowerCase()));
  if (!isLoopbackHost(options.bindHost) && options.bindHost !== "0.0.0.0" && options.bindHost !== "::") {
    allowed.add(options.bindHost.toLowerCase());
  }
  // Host headers repeat (one or two per client); remember the verdicts, within a bound.
  const verdicts = new Map<string, boolean>();
  return (hostHeader) => {
    let verdict = verdicts.get(hostHeader);
    if (verdict === undefined) {
      const name = hostName(hostHeader);
      verdict = name !== "" && (isLoopbackHost(name) || allowed.has(name));
      if (verdicts.size < 1024) verdicts.set(hostHeader, verdict);
    }
    return verdict;
  };
}

/** The answer to an allowed origin's preflight (its CORS headers come with the request context). */
function preflight(): Promise<Response> {
  return Promise.resolve(
    new Response(null, {
      status: 204,
      headers: {
        "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
        "access-control-allow-headers": CORS_ALLOW_HEADERS,
        "access-control-max-age": "600",
      },
    }),
  );
}

function tooLarge(maxBytes: number): TabAgentError {
  return new TabAgentError("payload_too_large", `Request body exceeds the limit of ${maxBytes} bytes`, {
    limit: maxBytes,
  });
}

/** What {@link bodyCounter} learned of a chunked body once the handler read it. */
interface BodyCount {
  limit: number;
  exceeded: boolean;
}

function bodyCounter(
  options: { maxBodyBytes: number; bodyLimits?: ReadonlyMap<string, number> },
): (c: Context<HttpEnv>) => BodyCount | null {
  return (c) => {
    const body = c.req.raw.body;
    if (body === null) return null;
    const limit = options.bodyLimits?.get(c.req.path) ?? options.maxBodyBytes;
    const length = c.req.raw.headers.get("content-length");
    if (length !== null) {
      if (Number(length) > limit) throw tooLarge(limit);
      return null;
    }
    const count: BodyCount = { limit, exceeded: false };
    let seen = 0;
    const counted = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > limit) {
            count.exceeded = true;
            controller.error(tooLarge(limit));
          } else controller.enqueue(chunk);
        },
      }),
    );
    c.req.raw = new Request(c.req.raw, { body: counted, duplex: "half" } as RequestInit);
    return count;
  };
}

/**
 * Races each request's work against its deadline, `ms` after it began (the guard's step 5; the fast
 * paths in `_fast_routes.ts` use it too).
 *
 * One shared ticker checks the deadlines instead of a timer per request: a timer per request was
 * the largest single cost of a `/v1/health` call in a profile. Deadlines are therefore enforced to
 * within a tick (a tenth of `ms`, at most one second). The requests in flight are an
 * {@link InFlight}, not a `Set`: see that module for what a `Set` cost here.
 */
export function deadlines(ms: number): <T>(work: Promise<T>) => Promise<T> {
  const tickMs = Math.min(1000, Math.max(10, Math.floor(ms / 10)));
  const inFlight = new InFlight<{ deadline: number; reject: (error: TabAgentError) => void }>();
  let ticker: ReturnType<typeof setInterval> | undefined;
  const sweep = () => {
    const now = performance.now();
    for (const [key, entry] of inFlight.entries()) {
      if (entry.deadline <= now) {
        inFlight.delete(key);
        entry.reject(new TabAgentError("timeout", `The request did not complete within ${ms} ms`));
      }
    }
    if (inFlight.size === 0) {
      clearInterval(ticker);
      ticker = undefined;
    }
  };
  return <T>(work: Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      const key = inFlight.add({ deadline: performance.now() + ms, reject });
      if (ticker === undefined) {
        ticker = setInterval(sweep, tickMs);
        // Never keep the process alive just to time requests out.
        Deno.unrefTimer(ticker as unknown as number);
      }
      work.then((value) => {
        inFlight.delete(key);
        resolve(value);
      }, (error) => {
        inFlight.delete(key);
        reject(error);
      });
    });
}
