/**
 * Routes served in front of Hono, like health (`_fast_health.ts`): `GET` routes that are called
 * often while the server is busy and whose handler hands its work to a worker. Through Hono a
 * `GET /v1/memory/search` cost the event loop its context, a promise per middleware layer, the
 * validator's copy of the query and about 10 KB of garbage a search; under 8 searching clients the
 * event loop's young-generation scavenges (each a pause that `/v1/health` waits behind) came about
 * as often as the garbage did.
 *
 * A fast route runs the same checks as the full path: the guard's Host, Origin and token checks
 * and deadline ({@link RequestAdmission}), the request id, metrics and access log
 * ({@link RequestRecorder}), the CORS headers, and errors as problem documents ({@link errorResponse}).
 * The route itself validates its query with the schema the full path uses. What it does not serve
 * it hands to Hono untouched: `HEAD` or another method, a request with a body, every refusal, and
 * a query it cannot take (the full path then answers it, 400 included, exactly as before).
 * @module
 */
import { getQueryParams } from "hono/utils/url";
import { TabAgentError } from "../errors/mod.ts";
import { addCorsHeaders, type RequestAdmission, type RequestRecorder } from "./middleware.ts";
import { errorResponse } from "./problem.ts";

/** A `GET` route served in front of Hono; see the module doc. */
export interface FastRoute {
  /** The route's path, without parameters (e.g. `/v1/memory/search`); also its metrics label. */
  readonly path: string;
  /**
   * Answers the request from its query (as Hono's validator sees it: one value, or an array for a
   * repeated key), or returns null to leave it to the full path. A rejection becomes a problem
   * document, as a handler's throw does.
   */
  answer(query: Record<string, string | string[]>): Promise<Response> | null;
}

const offered = new WeakMap<object, FastRoute[]>();

/** Records that `router` (a Hono sub-app) also serves `route` in front of Hono; see {@link fastRoutesOf}. */
export function offerFastRoute(router: object, route: FastRoute): void {
  const routes = offered.get(router) ?? [];
  routes.push(route);
  offered.set(router, routes);
}

/** The fast routes the routers offered ({@link offerFastRoute}), for the app to serve. */
export function fastRoutesOf(routers: readonly object[]): FastRoute[] {
  return routers.flatMap((router) => offered.get(router) ?? []);
}

/** Returns the answer to a `GET` of one of `routes` that the guard admits and the route takes, else null. */
export function fastRouteAnswerer(
  parts: { admission: RequestAdmission; recorder: RequestRecorder; routes: readonly FastRoute[] },
): (request: Request) => Promise<Response> | null {
  const { admission, recorder } = parts;
  const byPath = new Map(parts.routes.map((route) => [route.path, route]));
  if (byPath.size === 0) return () => null;
  return (request) => {
    if (request.method !== "GET") return null;
    const url = request.url;
    const start = url.indexOf("/", url.indexOf("//") + 2);
    if (start === -1) return null;
    const end = url.indexOf("?", start);
    const route = byPath.get(end === -1 ? url.slice(start) : url.slice(start, end));
    if (route === undefined || request.body !== null) return null;
    const began = performance.now();
    const headers = request.headers;
    let corsOrigin: string | undefined;
    try {
      corsOrigin = admission.origin(headers);
      admission.authorize("GET", route.path, headers);
    } catch (error) {
      if (error instanceof TabAgentError) return null; // refused: the full path refuses it again, the usual way
      throw error;
    }
    // As Hono's validator copies `c.req.queries()`: a key given once is its value. A `__proto__`
    // key would set this object's prototype: such a request is left to the full path.
    const params = getQueryParams(url) as Record<string, string[]>;
    const query: Record<string, string | string[]> = {};
    for (const key in params) {
      if (key === "__proto__") return null;
      const values = params[key];
      query[key] = values.length === 1 ? values[0] : values;
    }
    const answered = route.answer(query);
    if (answered === null) return null;
    const id = recorder.requestId(headers.get("x-request-id"));
    const log = recorder.log;
    const finish = (res: Response) => {
      if (!res.headers.has("x-request-id")) res.headers.set("x-request-id", id);
      if (corsOrigin !== undefined) addCorsHeaders(res.headers, corsOrigin);
      recorder.record({ method: "GET", route: route.path, path: route.path, id, began }, res.status);
      return res;
    };
    return admission.inTime(answered).then(
      finish,
      (error) => finish(errorResponse(error, { path: route.path, requestId: id, log })),
    );
  };
}
