/** Ollama's error shape on `/api/*`: `{"error": "..."}` with the status, instead of problem+json. */
import type { MiddlewareHandler } from "hono";
import { PROBLEM_CONTENT_TYPE } from "../problem.ts";
import type { HttpEnv } from "../router.ts";

/**
 * Rewrites every problem document answered under this middleware (auth, host and origin checks,
 * validation, not found, anything a handler throws) into Ollama's `{"error": detail}`, keeping the
 * status and headers. Mount it on `/api/*` before the security middleware so their refusals are
 * rewritten too: Ollama's clients read `error` as a string and show it.
 *
 * @example
 * ```ts
 * app.use("/api/*", ollamaErrorShape());
 * ```
 */
export function ollamaErrorShape(): MiddlewareHandler<HttpEnv> {
  return async (c, next) => {
    await next();
    const type = c.res.headers.get("content-type") ?? "";
    if (!type.startsWith(PROBLEM_CONTENT_TYPE)) return;
    const problem = await c.res.json() as { detail?: string; title?: string };
    const status = c.res.status;
    // The problem's other headers (Allow, WWW-Authenticate, the request id) still apply.
    const headers = new Headers(c.res.headers);
    headers.set("content-type", "application/json; charset=utf-8");
    headers.delete("content-length");
    c.res = new Response(JSON.stringify({ error: problem.detail ?? problem.title ?? `HTTP ${status}` }), {
      status,
      headers,
    });
  };
}
