/**
 * The HTTP front door: a Hono app with OpenAPI-described routes, the security middleware, docs,
 * metrics and static files, and the listener component. It owns no state: resources come in as
 * routers built over the components `app.ts` created.
 *
 * @example
 * ```ts
 * const app = createHttpApp({ config, version, log, lifecycle, metrics, token, nodeModules });
 * lifecycle.add(new HttpServer({ app, host: config.host, port: config.port, log }));
 * ```
 * @module
 */
export { createHttpApp, type HttpAppDeps } from "./app.ts";
export { HttpServer } from "./server.ts";
export { memoryRoutes } from "./memory.ts";
export { BEARER_SECURITY, createRouter, type HttpEnv } from "./router.ts";
export { PROBLEM_CONTENT_TYPE, problemResponse } from "./problem.ts";
export { isPublicPath } from "./middleware.ts";
export { contentTypeFor, safeJoin } from "./static.ts";
