/**
 * A router that remembers its answers for paths registered without parameters. The API's routes
 * cannot all live in Hono's RegExpRouter (a model id's `:rest{.+}` overlaps `/v1/models/pull/:job`),
 * so the app falls back to the TrieRouter, whose search was a tenth of a `/v1/health` request's
 * CPU time. The match for a given method and path never changes once the routes are in, so for
 * the fixed paths (health, metrics, the docs, `/v1/chat/completions`, …) it is worked out once.
 * @module
 */
import type { Result, Router } from "hono/router";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { SmartRouter } from "hono/router/smart-router";
import { TrieRouter } from "hono/router/trie-router";

/** Methods whose matches are remembered; any other (invented ones) is matched every time. */
const MEMO_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * Hono's default router (RegExpRouter, else TrieRouter) with each fixed path's match kept per
 * method. Only paths some route was registered with, without `:` or `*`, are kept, so what is
 * remembered is bounded by the route table, whatever paths clients send.
 *
 * @example
 * ```ts
 * const app = new OpenAPIHono({ router: new RouteMemo() });
 * ```
 */
export class RouteMemo<T> implements Router<T> {
  name = "RouteMemo";
  readonly #inner: Router<T>;
  readonly #fixedPaths = new Set<string>();
  readonly #memo = new Map<string, Map<string, Result<T>>>(MEMO_METHODS.map((m) => [m, new Map()]));

  constructor(inner: Router<T> = new SmartRouter<T>({ routers: [new RegExpRouter(), new TrieRouter()] })) {
    this.#inner = inner;
  }

  add(method: string, path: string, handler: T): void {
    this.#inner.add(method, path, handler);
    if (!path.includes(":") && !path.includes("*")) this.#fixedPaths.add(path);
  }

  match(method: string, path: string): Result<T> {
    const byPath = this.#memo.get(method);
    if (byPath === undefined || !this.#fixedPaths.has(path)) return this.#inner.match(method, path);
    let result = byPath.get(path);
    if (result === undefined) {
      result = this.#inner.match(method, path);
      byPath.set(path, result);
    }
    return result;
  }
}
