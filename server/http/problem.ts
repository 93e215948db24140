import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { type ErrorCode, TabAgentError, toProblem, toTabAgentError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { HttpEnv } from "./env.ts";

/** The media type of every error body (RFC 9457). */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** Every error body, as the OpenAPI document describes it (what {@link problemResponse} sends). */
export const ProblemSchema = z.object({
  type: z.string().describe("A URI naming the problem, stable per `code`"),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string().describe("TabAgent's error code, e.g. validation_failed, not_found"),
  instance: z.string().optional(),
  request_id: z.string().optional(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional().describe(
    "For validation_failed: each offending field",
  ),
  error: z.object({ message: z.string(), type: z.string(), code: z.string() }).optional().describe(
    "The same error in OpenAI's shape, for OpenAI clients",
  ),
}).passthrough().openapi("Problem");

/** An error response in a route's OpenAPI description. */
export function problem(description: string) {
  return { description, content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } } };
}

const STATUS_CODES: Record<number, ErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  503: "unavailable",
  504: "timeout",
};

/** Maps a Hono `HTTPException` (malformed JSON, timeouts) into the error family. */
function fromHttpException(error: HTTPException): TabAgentError {
  const code = STATUS_CODES[error.status] ?? (error.status >= 500 ? "internal" : "bad_request");
  const message = error.message || `HTTP ${error.status}`;
  return new TabAgentError(code, message, {}, { cause: error });
}

/** The `error.type` OpenAI clients expect for a status. */
function openAiErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

/** Renders an error as an `application/problem+json` response. */
export function problemResponse(c: Context<HttpEnv>, error: TabAgentError): Response {
  return problemFor(error, { path: c.req.path, requestId: c.get("requestId") });
}

/** {@link problemResponse} for a request Hono never saw (the fast paths in `_fast_routes.ts`). */
export function problemFor(error: TabAgentError, request: { path: string; requestId?: string }): Response {
  const { requestId } = request;
  const body = toProblem(error, { instance: request.path, requestId });
  // OpenAI SDKs read `error.message`; RFC 9457 allows extension members, so both kinds of client
  // get a readable error from the same document.
  body.error = { message: body.detail, type: openAiErrorType(body.status), code: error.code };
  const headers = new Headers({ "content-type": PROBLEM_CONTENT_TYPE });
  if (requestId) headers.set("x-request-id", requestId);
  if (error.code === "unauthorized") headers.set("www-authenticate", 'Bearer realm="tabagent"');
  // RFC 9110: a 405 names the methods the resource does serve.
  const allow = error.extensions.allow;
  if (error.code === "method_not_allowed" && Array.isArray(allow)) headers.set("allow", allow.join(", "));
  return new Response(JSON.stringify(body), { status: body.status, headers });
}

/** The app-wide `onError`: anything thrown becomes a problem document; internals are logged, not sent. */
export function handleError(error: unknown, c: Context<HttpEnv>): Response {
  return errorResponse(error, { path: c.req.path, requestId: c.get("requestId"), log: c.get("log") });
}

/** {@link handleError} for a request Hono never saw (the fast paths in `_fast_routes.ts`). */
export function errorResponse(
  error: unknown,
  request: { path: string; requestId?: string; log?: Logger },
): Response {
  const typed = error instanceof HTTPException ? fromHttpException(error) : toTabAgentError(error);
  const { log, requestId, path } = request;
  if (typed.code === "internal") {
    log?.error("request failed", { request_id: requestId, path, error: typed.cause ?? typed });
  } else {
    log?.debug("request rejected", { request_id: requestId, path, code: typed.code });
  }
  return problemFor(typed, { path, requestId });
}

/**
 * The app-wide `notFound`: a 405 with the `Allow` header when the path is served with other
 * methods (`allowed` tells which, see `_allowed_methods.ts`), else a 404.
 */
export function notFoundHandler(
  allowed: (path: string) => string[] | null = () => null,
): (c: Context<HttpEnv>) => Response {
  return (c) => {
    const { method, path } = c.req;
    const allow = allowed(path);
    if (allow && !allow.includes(method)) {
      return problemResponse(
        c,
        new TabAgentError("method_not_allowed", `${path} is served with ${allow.join(", ")}, not ${method}`, {
          allow,
        }),
      );
    }
    return problemResponse(c, new TabAgentError("not_found", `No route for ${method} ${path}`));
  };
}
