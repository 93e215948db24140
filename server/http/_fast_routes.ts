/**
 * Fast paths for hot `GET` routes, in front of Hono, as `_fast_health.ts` is for health. Under eight
 * searching clients, Hono's per-request machinery (its context and request objects, a promise per
 * middleware layer, the validator's copies of the query) was about half of the event loop's
 * JavaScript per search and of what it allocated: work that a `/v1/health` call arriving behind a
 * burst of searches waited for, and a young-generation collection every ~70 ms.
 *
 * A route's owner registers it beside its Hono route ({@link addFastRoute}), with the schema that
 * route validates its query with. The fast path takes only what it can answer exactly as Hono
 * would: a `GET` without a body for the exact path, that the guard admits ({@link RequestAdmission})
 * and whose query the schema accepts. Anything else (another method, a refusal, invalid input) goes
 * to Hono untouched, which answers it as before. A request it takes gets what the full chain
 * gives: the request id, the deadline, metrics and the access log under the route's pattern, the
 * CORS headers, and errors rendered by the app's own error handler.
 * @module
 */
import type { z } from "@hono/zod-openapi";
import { getQueryParams } from "hono/utils/url";
import { TabAgentError } from "../errors/mod.ts";
import { addCorsHeaders, deadlines, type RequestAdmission, type RequestRecorder } from "./middleware.ts";
import { errorResponse } from "./problem.ts";

/** A `GET` route answered ahead of Hono. */
export interface FastRoute<T = unknown> {
  /** The exact path; also the route label in metrics (the Hono route's pattern). */
  path: string;
  /** The query schema: the very one the Hono route validates with. */
  query: z.ZodType<T>;
  /** Answers a request whose query the schema accepted (errors become problem documents). */
  serve(query: T): Promise<Response>;
}

const registered = new WeakMap<object, FastRoute[]>();

/**
 * Registers `route` as a fast path of `router` (the sub-app that also serves it the Hono way);
 * `createHttpApp` picks it up when it mounts the router.
 *
 * @example
 * ```ts
 * addFastRoute(router, { path: "/v1/things", query: ThingsQuery, serve: async (q) => Response.json(await list(q)) });
 * ```
 */
export function addFastRoute<T>(router: object, route: FastRoute<T>): void {
  const routes = registered.get(router) ?? [];
  routes.push(route as FastRoute);
  registered.set(router, routes);
}

/** The fast routes registered on `routers`. */
export function fastRoutesOf(routers: readonly object[]): FastRoute[] {
  return routers.flatMap((router) => registered.get(router) ?? []);
}

/**
 * The guard's verdict on a request a fast path would take: the CORS origin to answer with
 * (undefined: none), or null when the guard refuses it; the full path then refuses it again, the
 * usual way. Shared with `_fast_health.ts`.
 */
export function admitFast(
  admission: RequestAdmission,
  method: string,
  path: string,
  headers: Headers,
): string | undefined | null {
  try {
    const corsOrigin = admission.origin(headers);
    admission.authorize(method, path, headers);
    return corsOrigin;
  } catch (error) {
    if (error instanceof TabAgentError) return null;
    throw error;
  }
}

/**
 * Completes a fast path's answer as the full chain does: the request id (unless the answer has
 * one), the CORS headers, metrics and the access log under `request.route`. Shared with
 * `_fast_health.ts`.
 */
export function finishFast(
  res: Response,
  recorder: RequestRecorder,
  request: { method: string; route: string; path: string; id: string; began: number },
  corsOrigin: string | undefined,
): Response {
  if (!res.headers.has("x-request-id")) res.headers.set("x-request-id", request.id);
  if (corsOrigin !== undefined) addCorsHeaders(res.headers, corsOrigin);
  recorder.record(request, res.status);
  return res;
}

/**
 * Returns a function that answers a request for one of `routes` (a promise of its response), or
 * null when Hono must: see the module doc for which requests those are.
 */
export function fastRouteAnswerer(
  parts: { admission: RequestAdmission; recorder: RequestRecorder; routes: readonly FastRoute[] },
): (request: Request) => Promise<Response> | null {
  const { admission, recorder } = parts;
  const byPath = new Map(parts.routes.map((route) => [route.path, route]));
  const inTime = deadlines(admission.options.timeoutMs);
  return (request) => {
    if (byPath.size === 0 || request.method !== "GET") return null;
    const url = request.url;
    const start = url.indexOf("/", url.indexOf("//") + 2);
    if (start === -1) return null;
    const queryAt = url.indexOf("?", start);
    const path = queryAt === -1 ? url.slice(start) : url.slice(start, queryAt);
    const route = byPath.get(path);
    if (route === undefined || request.body !== null) return null;
    const began = performance.now();
    const headers = request.headers;
    const corsOrigin = admitFast(admission, "GET", path, headers);
    if (corsOrigin === null) return null;
    // As Hono's validator reads a query: a key given once is a string, given twice an array.
    const query: Record<string, string | string[]> = {};
    const params = getQueryParams(url) as Record<string, string[]>;
    for (const key in params) query[key] = params[key].length === 1 ? params[key][0] : params[key];
    const parsed = route.query.safeParse(query);
    if (!parsed.success) return null; // Hono answers the validation problem
    const id = recorder.requestId(headers.get("x-request-id"));
    const finish = (res: Response) =>
      finishFast(res, recorder, { method: "GET", route: route.path, path, id, began }, corsOrigin);
    let work: Promise<Response>;
    try {
      work = route.serve(parsed.data);
    } catch (error) {
      work = Promise.reject(error);
    }
    return inTime(work).then(
      finish,
      (error) => finish(errorResponse(error, { path, requestId: id, log: recorder.log })),
    );
  };
}
