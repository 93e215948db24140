import { OpenAPIHono } from "@hono/zod-openapi";
import { validationError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";

/** Per-request values every handler can read with `c.get()`. */
export interface HttpEnv {
  Variables: {
    requestId: string;
    log: Logger;
  };
}

/**
 * A router for one resource. Each resource file creates its own, declares its routes with zod
 * schemas, and is mounted by `createHttpApp`; validation failures become 400 problems naming
 * the field.
 */
export function createRouter(): OpenAPIHono<HttpEnv> {
  return new OpenAPIHono<HttpEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(`request ${result.target}`, result.error.issues);
    },
  });
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
