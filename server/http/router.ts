import { OpenAPIHono } from "@hono/zod-openapi";
import { validationError } from "../errors/mod.ts";
import { RouteMemo } from "./_route_memo.ts";
import type { HttpEnv } from "./env.ts";
import { problem } from "./problem.ts";

export type { HttpEnv } from "./env.ts";

/** Statuses a router may declare for every one of its routes (what its component can answer). */
export type RouterStatus = 404 | 409 | 422 | 429 | 502 | 503 | 507;

const STATUS_TEXT: Record<number, string> = {
  400: "Invalid parameters or body; `errors` names each field",
  401: "Missing or wrong `Authorization: Bearer <token>`",
  403: "The Host (DNS rebinding guard) or Origin is not allowed",
  404: "Not found",
  409: "Conflicts with the current state",
  413: "The body is larger than the limit (`--max-body-bytes`)",
  422: "Well-formed but unusable (e.g. a checksum mismatch)",
  429: "Busy: every slot or the queue is full; retry later",
  500: "Internal error",
  502: "An upstream service failed",
  503: "The component this route needs is not ready",
  504: "No answer within `--request-timeout` (streams count once their headers are sent)",
  507: "Not enough disk space",
};

interface RouteLike {
  security?: unknown[];
  request?: { body?: unknown; params?: unknown; query?: unknown; headers?: unknown; cookies?: unknown };
  responses: Record<string, unknown>;
}

/**
 * The statuses the middleware and error mapping can give any route, added to a route's declared
 * responses (the route's own description wins): 403 and 500 and 504 everywhere; 401 on routes that
 * need the token (`security` absent inherits the document's bearer requirement); 400 where there
 * is anything to validate; 413 where there is a body; and the router's own `statuses`.
 */
export function withStandardResponses<R extends RouteLike>(route: R, statuses: readonly RouterStatus[] = []): R {
  const add: number[] = [403, 500, 504, ...statuses];
  const isPublic = Array.isArray(route.security) && route.security.length === 0;
  if (!isPublic) add.push(401);
  const request = route.request;
  if (request?.body) add.push(400, 413);
  if (request?.params || request?.query || request?.headers || request?.cookies) add.push(400);
  const responses: Record<string, unknown> = { ...route.responses };
  for (const status of add) {
    responses[status] ??= problem(STATUS_TEXT[status]);
  }
  return { ...route, responses };
}

/**
 * A router for one resource. Each resource file creates its own, declares its routes with zod
 * schemas, and is mounted by `createHttpApp`; validation failures become 400 problems naming
 * the field. Every route registered on it (with `openapi()` or `openAPIRegistry.registerPath()`)
 * is documented with the statuses the shared middleware can answer (see
 * {@link withStandardResponses}), plus `statuses`: what this router's component answers on any route
 * (e.g. 503 while memory is not ready).
 *
 * @example
 * ```ts
 * const router = createRouter({ statuses: [429, 503] });
 * ```
 */
export function createRouter(options: { statuses?: readonly RouterStatus[] } = {}): OpenAPIHono<HttpEnv> {
  const router = new OpenAPIHono<HttpEnv>({
    router: new RouteMemo(),
    defaultHook: (result) => {
      if (!result.success) throw validationError(`request ${result.target}`, result.error.issues);
    },
  });
  const registry = router.openAPIRegistry;
  const registerPath = registry.registerPath.bind(registry);
  registry.registerPath = (route) => registerPath(withStandardResponses(route, options.statuses));
  return router;
}

/**
 * A streamed answer (NDJSON, server-sent events) from a typed route. Hono types a route's answers
 * from its JSON schemas; a route whose 200 is only a stream has none, so its handler is typed to
 * return nothing at all. This is the one place that says so.
 */
export function streamedResponse(response: Response): never {
  return response as never;
}

/** The OpenAPI security requirement for routes that need the bearer token. */
export const BEARER_SECURITY = [{ bearerAuth: [] }];
